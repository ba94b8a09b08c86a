// Kafka Streams 4.3.1 word count with processing.guarantee=exactly_once_v2, and the tools to
// feed it and to check its output:
//
//   CP='compat-tests/.cache/kafka-4.3.1/libs/*:compat-tests/.cache/kafka-streams-4.3.1/libs/*'
//   java -cp "$CP" WordCount.java produce BOOTSTRAP INPUT OUTPUT LINES
//   java -cp "$CP" WordCount.java run BOOTSTRAP APP_ID STATE_DIR INPUT OUTPUT [slow]
//   java -cp "$CP" WordCount.java check BOOTSTRAP OUTPUT LINES [some]
//
// produce  creates INPUT and OUTPUT with 3 partitions each and writes LINES known lines to
//          INPUT (line i to partition i % 3), then prints `produced LINES`.
// run      the Streams app: splits lines into words, groups by word (so Streams makes a
//          repartition topic) and counts them (a changelog topic), writing each new count to
//          OUTPUT. Runs until killed; prints `state S` on each state change. With `slow` it
//          processes the first 2,000 lines at full speed and then sleeps 20 ms per line, so a
//          kill -9 is sure to land while the input is only partly counted.
// check    reads OUTPUT with isolation.level=read_committed from the beginning, keeping the
//          last count per word, until the counts are exactly those of the first LINES lines
//          (prints `counts exact: W words, T total`), or, with `some`, until it has read any
//          committed count (prints `some committed: complete=BOOL`). Exits 1 with the
//          difference if that takes longer than its deadline, or if a count ever goes past
//          the expected one (a duplicate that exactly-once should have prevented).

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

public class WordCount {
    static final int PARTITIONS = 3;
    static final String[] VOCAB = (
        "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
        + "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
        + "zulu amber basil cedar dune ember fjord grove heath islet jade knoll larch moss "
        + "nettle oak pine quartz reed sage thyme umber vale willow yew").split(" ");
    static final long FAST_LINES = 2_000;
    static final Duration CHECK_DEADLINE = Duration.ofSeconds(180);

    /** Line i: 1 to 7 words of the vocabulary, the same on every run. */
    static String line(int i) {
        int n = 1 + (i % 7);
        StringBuilder sb = new StringBuilder();
        for (int j = 0; j < n; j++) {
            if (j > 0) {
                sb.append(' ');
            }
            sb.append(VOCAB[Math.floorMod(i * 31 + j * 17 + i / 7, VOCAB.length)]);
        }
        return sb.toString();
    }

    static Map<String, Long> expected(int lines) {
        Map<String, Long> m = new TreeMap<>();
        for (int i = 0; i < lines; i++) {
            for (String w : line(i).split(" ")) {
                m.merge(w, 1L, Long::sum);
            }
        }
        return m;
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "produce" -> produce(args[1], args[2], args[3], Integer.parseInt(args[4]));
            case "run" -> run(args[1], args[2], args[3], args[4], args[5],
                args.length > 6 && args[6].equals("slow"));
            case "check" -> System.exit(check(args[1], args[2], Integer.parseInt(args[3]),
                args.length > 4 && args[4].equals("some")));
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    static void produce(String bootstrap, String topic, String output, int lines) throws Exception {
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(ap)) {
            // The output topic too, so nothing depends on auto-creation's partition count.
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1),
                new NewTopic(output, PARTITIONS, (short) 1))).all().get();
        }
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        try (KafkaProducer<String, String> producer =
                 new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < lines; i++) {
                producer.send(new ProducerRecord<>(topic, i % PARTITIONS, "line-" + i, line(i)));
            }
            producer.flush();
        }
        System.out.println("produced " + lines);
    }

    static void run(String bootstrap, String appId, String stateDir, String in, String out,
                    boolean slow) throws Exception {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        // Kafka's default with exactly-once is 100 ms; said here because the test relies on
        // output being committed while the slow run is still going.
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        // A Streams thread polls again only when it has processed what the last poll gave it,
        // and a poll hands out one partition's fetched records before the next partition's.
        // Small polls of small fetches keep the slow run's counting, which reads the
        // repartition topic, from waiting behind the whole input.
        p.put(StreamsConfig.mainConsumerPrefix("max.poll.records"), 50);
        p.put(StreamsConfig.mainConsumerPrefix("max.partition.fetch.bytes"), 4096);
        // The restarted app's rebalance waits for the killed member to time out: Kafka's
        // smallest allowed session (group.min.session.timeout.ms) instead of 45 s.
        p.put(StreamsConfig.consumerPrefix("session.timeout.ms"), 6000);

        AtomicLong seen = new AtomicLong();
        StreamsBuilder b = new StreamsBuilder();
        b.<String, String>stream(in)
            .peek((k, v) -> {
                if (slow && seen.incrementAndGet() > FAST_LINES) {
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            })
            .flatMapValues(v -> Arrays.asList(v.split(" ")))
            .groupBy((k, w) -> w, Grouped.with(Serdes.String(), Serdes.String()))
            .count(Materialized.as("counts"))
            .toStream()
            .to(out, Produced.with(Serdes.String(), Serdes.Long()));

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch dead = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("state " + now + " at " + java.time.Instant.now());
            System.out.flush();
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                dead.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.out.println("uncaught " + e);
            System.out.flush();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        dead.await();
        streams.close(Duration.ofSeconds(10));
        System.exit(1);
    }

    static int check(String bootstrap, String topic, int lines, boolean some) throws Exception {
        Map<String, Long> want = expected(lines);
        long wantTotal = want.values().stream().mapToLong(Long::longValue).sum();
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("isolation.level", "read_committed");
        c.put("enable.auto.commit", "false");
        Map<String, Long> got = new HashMap<>();
        try (KafkaConsumer<String, Long> consumer =
                 new KafkaConsumer<>(c, new StringDeserializer(), new LongDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            long end = System.nanoTime() + CHECK_DEADLINE.toNanos();
            // The topic appears when the app first writes to it.
            while (tps.isEmpty()) {
                var parts = consumer.partitionsFor(topic, Duration.ofSeconds(5));
                if (parts != null && !parts.isEmpty()) {
                    parts.forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
                } else if (System.nanoTime() > end) {
                    System.out.println("no output topic " + topic);
                    return 1;
                } else {
                    Thread.sleep(200);
                }
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long records = 0;
            while (true) {
                for (ConsumerRecord<String, Long> r : consumer.poll(Duration.ofMillis(200))) {
                    records++;
                    Long w = want.get(r.key());
                    if (w == null || r.value() > w) {
                        System.out.println("count past the input: " + r.key() + "=" + r.value()
                            + " (input has " + w + ") at " + r.topic() + "-" + r.partition()
                            + "@" + r.offset());
                        return 1;
                    }
                    got.put(r.key(), r.value());
                }
                if (some && records > 0) {
                    System.out.println("some committed: complete=" + got.equals(want));
                    return 0;
                }
                if (got.equals(want)) {
                    System.out.println("counts exact: " + want.size() + " words, " + wantTotal
                        + " total, " + records + " output records read");
                    return 0;
                }
                if (System.nanoTime() > end) {
                    Map<String, String> diff = new TreeMap<>();
                    for (String w : want.keySet()) {
                        if (!want.get(w).equals(got.get(w))) {
                            diff.put(w, got.get(w) + " want " + want.get(w));
                        }
                    }
                    System.out.println("counts differ after " + CHECK_DEADLINE + ": " + diff);
                    return 1;
                }
            }
        }
    }
}

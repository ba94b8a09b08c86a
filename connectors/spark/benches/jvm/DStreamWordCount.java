// Spark Streaming's DirectKafkaWordCount (the seed job), for the side-by-side benchmark
// connectors/spark/benches/sidebyside.py: a direct stream (KafkaUtils.createDirectStream,
// PreferConsistent, Subscribe) split on " ", counted with reduceByKey, in local[2].
//
//   java <Spark's --add-opens flags> -cp "jars/*:." DStreamWordCount \
//       BOOTSTRAP TOPIC BATCH_MS EXPECTED_RECORDS GROUP
//
// stdout, for the benchmark to parse:
//   BATCH time=<batch time, epoch ms> records=<n> start=<ms> end=<ms> sched=<ms> proc=<ms> total=<ms>
//     one per completed batch (a StreamingListener's BatchInfo);
//   COUNT <word> <n>  the totals over all batches, once EXPECTED_RECORDS records were counted;
//   DONE
// Each batch's counts are collected to the driver and added up there, so every word's total
// can be checked against the other implementations (the seed prints only the top ten).

import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.SparkConf;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaDStream;
import org.apache.spark.streaming.api.java.JavaInputDStream;
import org.apache.spark.streaming.api.java.JavaPairDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.kafka010.ConsumerStrategies;
import org.apache.spark.streaming.kafka010.KafkaUtils;
import org.apache.spark.streaming.kafka010.LocationStrategies;
import org.apache.spark.streaming.scheduler.BatchInfo;
import org.apache.spark.streaming.scheduler.StreamingListener;
import org.apache.spark.streaming.scheduler.StreamingListenerBatchCompleted;

import scala.Tuple2;

public final class DStreamWordCount {
    private static final Pattern SPACE = Pattern.compile(" ");

    // Driver-side totals: foreachRDD's function runs on the driver.
    private static final Map<String, Long> TOTALS = new ConcurrentHashMap<>();

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: DStreamWordCount BOOTSTRAP TOPIC BATCH_MS EXPECTED_RECORDS GROUP");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        long batchMs = Long.parseLong(args[2]);
        long expected = Long.parseLong(args[3]);
        String group = args[4];

        SparkConf conf = new SparkConf()
            .setAppName("DirectKafkaWordCount")
            .setMaster("local[2]")
            // No web UI: sluice-spark has none, and it only adds start-up time here.
            .set("spark.ui.enabled", "false");
        JavaStreamingContext jssc = new JavaStreamingContext(conf, Durations.milliseconds(batchMs));

        Map<String, Object> kafkaParams = new HashMap<>();
        kafkaParams.put("bootstrap.servers", bootstrap);
        kafkaParams.put("group.id", group);
        kafkaParams.put("key.deserializer", StringDeserializer.class);
        kafkaParams.put("value.deserializer", StringDeserializer.class);
        kafkaParams.put("auto.offset.reset", "earliest");
        kafkaParams.put("enable.auto.commit", false);

        JavaInputDStream<ConsumerRecord<String, String>> messages = KafkaUtils.createDirectStream(
            jssc,
            LocationStrategies.PreferConsistent(),
            ConsumerStrategies.Subscribe(Collections.singletonList(topic), kafkaParams));

        JavaDStream<String> lines = messages.map(ConsumerRecord::value);
        JavaDStream<String> words = lines.flatMap(x -> Arrays.asList(SPACE.split(x)).iterator());
        JavaPairDStream<String, Integer> wordCounts = words.mapToPair(s -> new Tuple2<>(s, 1))
            .reduceByKey(Integer::sum);
        wordCounts.foreachRDD(rdd -> {
            for (Tuple2<String, Integer> t : rdd.collect()) {
                TOTALS.merge(t._1(), (long) t._2(), Long::sum);
            }
        });

        AtomicLong seen = new AtomicLong();
        CountDownLatch done = new CountDownLatch(1);
        jssc.addStreamingListener(new StreamingListener() {
            @Override
            public void onBatchCompleted(StreamingListenerBatchCompleted completed) {
                BatchInfo info = completed.batchInfo();
                long start = (Long) info.processingStartTime().get();
                long end = (Long) info.processingEndTime().get();
                System.out.printf("BATCH time=%d records=%d start=%d end=%d sched=%d proc=%d total=%d%n",
                    info.batchTime().milliseconds(), info.numRecords(), start, end,
                    (Long) info.schedulingDelay().get(), (Long) info.processingDelay().get(),
                    (Long) info.totalDelay().get());
                System.out.flush();
                if (expected > 0 && seen.addAndGet(info.numRecords()) >= expected) {
                    done.countDown();
                }
            }
        });

        jssc.start();
        done.await();
        for (Map.Entry<String, Long> e : TOTALS.entrySet()) {
            System.out.println("COUNT " + e.getKey() + " " + e.getValue());
        }
        System.out.println("DONE");
        System.out.flush();
        jssc.stop(true, false);
    }
}

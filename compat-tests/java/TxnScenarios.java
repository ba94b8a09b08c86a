// Kafka transactions with the real Java client (kafka-clients 4.3.1), one scenario per
// argument, run in order in one JVM:
//
//   java -cp 'compat-tests/.cache/kafka-4.3.1/libs/*' TxnScenarios.java BOOTSTRAP PREFIX SCENARIO...
//
// Scenarios (topics and transactional ids are named from PREFIX, so a run never meets an
// earlier run's state):
//   commit-abort  one transaction committed and one aborted, each across 3 partitions, then a
//                 third committed; read_committed sees the committed records only, with the
//                 control records' offsets skipped; the LSO holds at an open transaction.
//   ctp           consume-transform-produce in a consumer group with sendOffsetsToTransaction:
//                 the group's committed offsets move only when a transaction commits.
//   ctp-848       the same with a KIP-848 member (group.protocol=consumer).
//   fence         a second producer with the same transactional.id fences the first.
//   hang-open     opens a transaction (transaction.timeout.ms=3000), writes to 3 partitions and
//                 halts the JVM without ending it. Must be the last scenario of its run.
//   hang-check    after hang-open: read_committed consumers get past the open transaction once
//                 the coordinator has aborted it on timeout.
//   open TXID TOPIC TIMEOUT_MS
//                 writes one record to partition 0 of TOPIC in a transaction and halts, leaving
//                 it open (for the kafka-transactions tool). Must be last.
//   commit-one TXID TOPIC VALUE
//                 commits one record to partition 0 of TOPIC in a transaction of its own.
//   create TOPIC  creates TOPIC with 3 partitions.
//   read TOPIC    prints what read_committed and read_uncommitted consumers read from TOPIC.
//
// Output: one line per fact, `SCENARIO: fact`, with nothing that differs between two correct
// brokers (no producer ids, timestamps or ports), so the caller can compare the lines that
// Kafka and Sluice produce. Lines starting with `#` are diagnostics and are not compared. Any
// unexpected client exception fails the whole run with exit status 1.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnScenarios {
    static final int PARTITIONS = 3;
    /** Every wait in this program ends by this deadline, then fails the run. */
    static final Duration DEADLINE = Duration.ofSeconds(60);

    static String bootstrap;
    static String prefix;
    static Admin admin;

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: TxnScenarios BOOTSTRAP PREFIX SCENARIO...");
            System.exit(2);
        }
        bootstrap = args[0];
        prefix = args[1];
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bootstrap);
        admin = Admin.create(ap);
        try {
            for (int i = 2; i < args.length; i++) {
                String s = args[i];
                switch (s) {
                    case "commit-abort" -> commitAbort();
                    case "ctp" -> consumeTransformProduce("ctp", "classic");
                    case "ctp-848" -> consumeTransformProduce("ctp-848", "consumer");
                    case "fence" -> fence();
                    case "hang-open" -> hangOpen();
                    case "hang-check" -> hangCheck();
                    case "open" -> {
                        open(args[i + 1], args[i + 2], Integer.parseInt(args[i + 3]));
                        i += 3;
                    }
                    case "commit-one" -> {
                        commitOne(args[i + 1], args[i + 2], args[i + 3]);
                        i += 3;
                    }
                    case "create" -> createTopic(args[++i]);
                    case "read" -> {
                        String topic = args[++i];
                        say("read", "read_committed " + readAll(topic, "read_committed").withOffsets());
                        say("read", "read_uncommitted " + readAll(topic, "read_uncommitted").withOffsets());
                    }
                    default -> throw new IllegalArgumentException("unknown scenario " + s);
                }
                System.out.flush();
            }
        } catch (Throwable t) {
            System.out.flush();
            System.err.println("FAILED: " + t);
            t.printStackTrace();
            System.exit(1);
        }
        admin.close(Duration.ofSeconds(5));
        System.out.println("done");
        System.out.flush();
        // Client threads must not keep the JVM alive past a finished run.
        System.exit(0);
    }

    static void say(String scenario, String fact) {
        System.out.println(scenario + ": " + fact);
    }

    static void createTopic(String topic) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get();
        waitFor("metadata of " + topic, () -> {
            try {
                return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic)
                    .partitions().stream().allMatch(p -> p.leader() != null);
            } catch (Exception e) {
                return false;
            }
        });
    }

    static void waitFor(String what, BooleanSupplier cond) throws InterruptedException {
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new IllegalStateException("timed out waiting for " + what);
            }
            Thread.sleep(100);
        }
    }

    static KafkaProducer<String, String> txnProducer(String txid, Map<String, Object> extra) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", txid);
        p.put("linger.ms", "0");
        p.putAll(extra);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    static KafkaProducer<String, String> plainProducer() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    static KafkaConsumer<String, String> consumer(String isolation, Map<String, Object> extra) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("isolation.level", isolation);
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        c.putAll(extra);
        return new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer());
    }

    static List<TopicPartition> partitions(String topic) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        return tps;
    }

    /** What one consumer read from every partition of a topic from the beginning. */
    record Read(Map<Integer, List<String>> values, Map<Integer, Long> positions,
                Map<Integer, Long> endOffsets) {
        /** `p0=v@off,v@off p1=...`: values with their offsets, partition by partition. */
        String withOffsets() {
            return values.entrySet().stream()
                .map(e -> "p" + e.getKey() + "=" + String.join(",", e.getValue()))
                .collect(Collectors.joining(" "));
        }

        /** The values alone, sorted, whatever their partition and offset. */
        String sortedValues() {
            return values.values().stream().flatMap(List::stream)
                .map(v -> v.substring(0, v.indexOf('@')))
                .sorted().collect(Collectors.joining(","));
        }

        String positionsText() {
            return positions.entrySet().stream().map(e -> "p" + e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(" "));
        }
    }

    /**
     * Reads every partition of `topic` from the beginning at `isolation` until the consumer's
     * position reaches the end offset it is allowed to see (the LSO for read_committed, the
     * high watermark otherwise) and `until` holds for what it has read. With `settled`, it
     * also waits until no transaction is open on the topic (LSO = high watermark): a
     * transaction's markers are written after commitTransaction returns, as in Kafka, where
     * EndTxn is answered once the coordinator has logged its decision.
     */
    static Read readAll(String topic, String isolation, boolean settled,
                        java.util.function.Predicate<List<String>> until) throws Exception {
        try (KafkaConsumer<String, String> c = consumer(isolation, Map.of());
             KafkaConsumer<String, String> committed = consumer("read_committed", Map.of());
             KafkaConsumer<String, String> uncommitted = consumer("read_uncommitted", Map.of())) {
            List<TopicPartition> tps = partitions(topic);
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<Integer, List<String>> values = new TreeMap<>();
            for (int p = 0; p < PARTITIONS; p++) {
                values.put(p, new ArrayList<>());
            }
            long end = System.nanoTime() + DEADLINE.toNanos();
            while (true) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : recs) {
                    values.get(r.partition()).add(r.value() + "@" + r.offset());
                }
                Map<TopicPartition, Long> ends = c.endOffsets(tps);
                boolean atEnd = tps.stream().allMatch(tp -> c.position(tp) >= ends.get(tp));
                boolean calm = !settled
                    || committed.endOffsets(tps).equals(uncommitted.endOffsets(tps));
                List<String> flat = values.values().stream().flatMap(List::stream)
                    .map(v -> v.substring(0, v.indexOf('@'))).toList();
                if (atEnd && calm && until.test(flat)) {
                    Map<Integer, Long> pos = new TreeMap<>();
                    Map<Integer, Long> endByP = new TreeMap<>();
                    for (TopicPartition tp : tps) {
                        pos.put(tp.partition(), c.position(tp));
                        endByP.put(tp.partition(), ends.get(tp));
                    }
                    return new Read(values, pos, endByP);
                }
                if (System.nanoTime() > end) {
                    throw new IllegalStateException("timed out reading " + topic + " at "
                        + isolation + "; read so far: " + values + "; end offsets " + ends
                        + "; open transactions: " + !calm);
                }
            }
        }
    }

    /** Everything on the topic once no transaction is open on it. */
    static Read readAll(String topic, String isolation) throws Exception {
        return readAll(topic, isolation, true, v -> true);
    }

    /** End offsets that a consumer at `isolation` sees, as `p0=N p1=N p2=N`. */
    static String endOffsets(String topic, String isolation) {
        try (KafkaConsumer<String, String> c = consumer(isolation, Map.of())) {
            Map<TopicPartition, Long> ends = c.endOffsets(partitions(topic));
            return new TreeMap<>(ends.entrySet().stream()
                    .collect(Collectors.toMap(e -> e.getKey().partition(), Map.Entry::getValue)))
                .entrySet().stream().map(e -> "p" + e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(" "));
        }
    }

    /** Sends `n` records per partition, named `tag-pP-i`, and waits for every ack. */
    static void sendEach(KafkaProducer<String, String> p, String topic, String tag, int n)
            throws Exception {
        List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
        for (int part = 0; part < PARTITIONS; part++) {
            for (int i = 0; i < n; i++) {
                acks.add(p.send(new ProducerRecord<>(topic, part, null, tag + "-p" + part + "-" + i)));
            }
        }
        for (var f : acks) {
            f.get();
        }
    }

    // ---------------------------------------------------------------- commit-abort

    static void commitAbort() throws Exception {
        String s = "commit-abort";
        String topic = prefix + "-ca";
        createTopic(topic);
        try (KafkaProducer<String, String> p = txnProducer(prefix + "-ca-tx", Map.of())) {
            p.initTransactions();
            p.beginTransaction();
            sendEach(p, topic, "c1", 2);
            p.commitTransaction();

            p.beginTransaction();
            sendEach(p, topic, "a2", 2);
            // Both records of the open transaction are acknowledged; read_committed must stop
            // at its first offset (the LSO), read_uncommitted at the high watermark.
            say(s, "open: read_committed end offsets " + endOffsets(topic, "read_committed"));
            say(s, "open: read_uncommitted end offsets " + endOffsets(topic, "read_uncommitted"));
            Read held = readAll(topic, "read_committed", false, v -> true);
            say(s, "open: read_committed " + held.withOffsets());
            p.abortTransaction();

            p.beginTransaction();
            sendEach(p, topic, "c3", 2);
            p.commitTransaction();
        }
        Read rc = readAll(topic, "read_committed");
        say(s, "read_committed " + rc.withOffsets());
        say(s, "read_committed positions " + rc.positionsText());
        Read ru = readAll(topic, "read_uncommitted");
        say(s, "read_uncommitted " + ru.withOffsets());
        say(s, "read_uncommitted positions " + ru.positionsText());
    }

    // ---------------------------------------------------------------- consume-transform-produce

    /**
     * The group's committed offsets for the partitions of `topic`, `p0=N p1=N p2=N` (`none`
     * where the group has none). With `stable`, OffsetFetch asks for require_stable: while a
     * transaction that wrote offsets for a partition has not finished writing its markers, the
     * coordinator answers UNSTABLE_OFFSET_COMMIT for it, which Admin leaves out of the result,
     * so this asks again until every partition has an answer. Without it, offsets pending in an
     * open transaction are simply not shown.
     */
    static String groupOffsets(String group, String topic, boolean stable) throws Exception {
        List<TopicPartition> tps = partitions(topic);
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (true) {
            Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(
                    Map.of(group, new org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec()
                        .topicPartitions(tps)),
                    new org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions()
                        .requireStable(stable))
                .partitionsToOffsetAndMetadata(group).get();
            if (!m.keySet().containsAll(tps)) {
                if (System.nanoTime() > end) {
                    throw new IllegalStateException("group " + group + " offsets still unstable: " + m);
                }
                Thread.sleep(100);
                continue;
            }
            List<String> out = new ArrayList<>();
            for (TopicPartition tp : tps) {
                OffsetAndMetadata o = m.get(tp);
                out.add("p" + tp.partition() + "=" + (o == null ? "none" : Long.toString(o.offset())));
            }
            return String.join(" ", out);
        }
    }

    /** Polls the group member until it has `n` records; returns them. */
    static List<ConsumerRecord<String, String>> pollN(KafkaConsumer<String, String> c, int n)
            throws Exception {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (got.size() < n) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got.add(r);
            }
            if (System.nanoTime() > end) {
                throw new IllegalStateException("timed out polling " + n + " records, got " + got.size());
            }
        }
        if (got.size() != n) {
            throw new IllegalStateException("wanted " + n + " records, got " + got.size() + ": " + got);
        }
        return got;
    }

    /** Writes each input record, upper-cased, to the same partition of `out`, and the next
     *  offsets as the group's, in one transaction, then commits or aborts it. */
    static void transform(KafkaProducer<String, String> p, KafkaConsumer<String, String> c,
                          List<ConsumerRecord<String, String>> in, String out, boolean commit,
                          String s, String group, String inTopic) throws Exception {
        p.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
        for (ConsumerRecord<String, String> r : in) {
            p.send(new ProducerRecord<>(out, r.partition(), null, r.value().toUpperCase()));
            next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        p.sendOffsetsToTransaction(next, c.groupMetadata());
        p.flush();
        // The offsets sit in the open transaction; the group's committed offsets are still
        // the ones before it (OffsetFetch without require_stable).
        say(s, (commit ? "commit" : "abort") + " pending: group offsets " + groupOffsets(group, inTopic, false));
        if (commit) {
            p.commitTransaction();
        } else {
            p.abortTransaction();
        }
    }

    /** `protocol` is the member's group.protocol: `classic` (JoinGroup/SyncGroup, the
     *  transactional offsets carry the generation) or `consumer` (KIP-848 heartbeats, they
     *  carry the member epoch). */
    static void consumeTransformProduce(String s, String protocol) throws Exception {
        String in = prefix + "-" + s + "-in";
        String out = prefix + "-" + s + "-out";
        String group = prefix + "-" + s + "-group";
        createTopic(in);
        createTopic(out);
        try (KafkaProducer<String, String> plain = plainProducer()) {
            sendEach(plain, in, "w1", 4);
        }
        try (KafkaConsumer<String, String> c = consumer("read_committed",
                 Map.of("group.id", group, "max.poll.records", "1000", "group.protocol", protocol));
             KafkaProducer<String, String> p = txnProducer(prefix + "-" + s + "-tx", Map.of())) {
            p.initTransactions();
            c.subscribe(List.of(in));
            say(s, "before: group offsets " + groupOffsets(group, in, true));

            transform(p, c, pollN(c, 12), out, true, s, group, in);
            say(s, "after commit 1: group offsets " + groupOffsets(group, in, true));

            try (KafkaProducer<String, String> plain = plainProducer()) {
                sendEach(plain, in, "w2", 2);
            }
            transform(p, c, pollN(c, 6), out, false, s, group, in);
            say(s, "after abort: group offsets " + groupOffsets(group, in, true));

            // After an abort the application goes back to the last committed offsets, as
            // Kafka's exactly-once examples do.
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.copyOf(partitions(in)));
            for (var e : committed.entrySet()) {
                c.seek(e.getKey(), e.getValue().offset());
            }
            transform(p, c, pollN(c, 6), out, true, s, group, in);
            say(s, "after commit 2: group offsets " + groupOffsets(group, in, true));
        }
        Read rc = readAll(out, "read_committed");
        say(s, "output read_committed " + rc.withOffsets());
        Read ru = readAll(out, "read_uncommitted");
        say(s, "output read_uncommitted " + ru.withOffsets());
    }

    // ---------------------------------------------------------------- fencing

    /** The class of the exception a client call ended with (the cause of an ExecutionException),
     *  or `ok`. */
    static String outcome(ThrowingRunnable r) {
        try {
            r.run();
            return "ok";
        } catch (ExecutionException e) {
            return e.getCause().getClass().getName();
        } catch (Exception e) {
            return e.getClass().getName();
        }
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    static void fence() throws Exception {
        String s = "fence";
        String topic = prefix + "-fence";
        String txid = prefix + "-fence-tx";
        createTopic(topic);
        KafkaProducer<String, String> a = txnProducer(txid, Map.of());
        a.initTransactions();
        a.beginTransaction();
        a.send(new ProducerRecord<>(topic, 0, null, "a1")).get();
        a.commitTransaction();
        a.beginTransaction();
        a.send(new ProducerRecord<>(topic, 0, null, "a2")).get();

        try (KafkaProducer<String, String> b = txnProducer(txid, Map.of())) {
            // Fences `a` and aborts its open transaction.
            b.initTransactions();
            say(s, "first producer send after fencing: "
                + outcome(() -> a.send(new ProducerRecord<>(topic, 0, null, "a3")).get()));
            say(s, "first producer commit after fencing: " + outcome(a::commitTransaction));
            say(s, "first producer abort after fencing: " + outcome(a::abortTransaction));
            a.close(Duration.ZERO);
            b.beginTransaction();
            b.send(new ProducerRecord<>(topic, 0, null, "b1")).get();
            b.commitTransaction();
        }
        Read rc = readAll(topic, "read_committed");
        say(s, "read_committed " + rc.withOffsets());
        Read ru = readAll(topic, "read_uncommitted");
        say(s, "read_uncommitted " + ru.withOffsets());
    }

    // ---------------------------------------------------------------- timed-out transaction

    static void hangOpen() throws Exception {
        String s = "hang-open";
        String topic = prefix + "-hang";
        createTopic(topic);
        KafkaProducer<String, String> p =
            txnProducer(prefix + "-hang-tx", Map.of("transaction.timeout.ms", "3000"));
        p.initTransactions();
        p.beginTransaction();
        sendEach(p, topic, "h", 1);
        say(s, "open, halting");
        System.out.flush();
        // No commit, no abort, no close: as if the process had been killed.
        Runtime.getRuntime().halt(0);
    }

    static void hangCheck() throws Exception {
        String s = "hang-check";
        String topic = prefix + "-hang";
        try (KafkaProducer<String, String> p = txnProducer(prefix + "-hang-after-tx", Map.of())) {
            p.initTransactions();
            p.beginTransaction();
            sendEach(p, topic, "after", 1);
            p.commitTransaction();
        }
        // Only the coordinator's abort of the timed-out transaction lets the LSO past it.
        Read rc = readAll(topic, "read_committed", true,
            v -> v.containsAll(List.of("after-p0-0", "after-p1-0", "after-p2-0")));
        say(s, "read_committed " + rc.sortedValues());
        Read ru = readAll(topic, "read_uncommitted");
        say(s, "read_uncommitted " + ru.sortedValues());
        String txid = prefix + "-hang-tx";
        String[] state = new String[1];
        waitFor("the timed-out transaction to complete its abort", () -> {
            try {
                TransactionDescription d =
                    admin.describeTransactions(List.of(txid)).description(txid).get();
                state[0] = d.state().toString();
                System.out.println("# " + txid + ": " + d);
                return !state[0].equals("Ongoing") && !state[0].equals("PrepareAbort");
            } catch (Exception e) {
                return false;
            }
        });
        say(s, "state " + state[0]);
    }

    // ---------------------------------------------------------------- for the tool test

    static void open(String txid, String topic, int timeoutMs) throws Exception {
        KafkaProducer<String, String> p =
            txnProducer(txid, Map.of("transaction.timeout.ms", Integer.toString(timeoutMs)));
        p.initTransactions();
        p.beginTransaction();
        p.send(new ProducerRecord<>(topic, 0, null, "open-0")).get();
        say("open", "open, halting");
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }

    static void commitOne(String txid, String topic, String value) throws Exception {
        try (KafkaProducer<String, String> p = txnProducer(txid, Map.of())) {
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 0, null, value)).get();
            p.commitTransaction();
        }
        say("commit-one", "committed " + value);
    }
}

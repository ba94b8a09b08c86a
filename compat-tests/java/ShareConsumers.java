// Kafka's KafkaShareConsumer (KIP-932) against a broker: several members of one share
// group reading the same partition.
//
//   java -cp 'KAFKA/libs/*' ShareConsumers.java BOOTSTRAP TOPIC GROUP MODE N [MEMBERS]
//
// MODE:
//   produce   create TOPIC (1 partition) if needed and write N records v-0 .. v-(N-1)
//   earliest  make the group start at the earliest offset: the group config
//             share.auto.offset.reset=earliest, or (where GROUP configs are not served)
//             its start offset set to 0 with alterShareGroupOffsets
//   accept    MEMBERS consumers accept every record
//   mixed     as accept, but v-i with i % 10 == 3 is RELEASEd on its first delivery and
//             v-i with i % 10 == 7 is REJECTed
//   close     as accept, but member 0 closes after its first poll without acknowledging
//   run       as accept, but slower (a pause after each poll) and with a 300 s deadline,
//             so the broker can be killed and restarted underneath
//
// Every record received prints `GOT v member delivery-count`; every record whose
// acknowledgement the broker confirmed (commitSync) prints `ACCEPTED v` or `REJECTED v`.
// A record received again after its acceptance was confirmed prints `VIOLATION v`. The
// consuming modes end with `DONE` once every record not rejected was accepted, and exit 0.

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class ShareConsumers {
    static final Set<String> accepted = ConcurrentHashMap.newKeySet();
    static final Set<String> rejected = ConcurrentHashMap.newKeySet();
    static final Set<String> released = ConcurrentHashMap.newKeySet();

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], mode = args[3];
        int n = Integer.parseInt(args[4]);
        int members = args.length > 5 ? Integer.parseInt(args[5]) : 3;
        switch (mode) {
            case "produce" -> produce(bootstrap, topic, n);
            case "earliest" -> earliest(bootstrap, topic, group);
            default -> consume(bootstrap, topic, group, mode, n, members);
        }
    }

    static void produce(String bootstrap, String topic, int n) throws Exception {
        Properties a = new Properties();
        a.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(a)) {
            try {
                admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            } catch (Exception e) {
                if (!String.valueOf(e.getMessage()).contains("already exists")) throw e;
            }
        }
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("linger.ms", "5");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < n; i++) producer.send(new ProducerRecord<>(topic, 0, null, "v-" + i));
            producer.flush();
        }
        System.out.println("PRODUCED " + n);
    }

    static void earliest(String bootstrap, String topic, String group) throws Exception {
        Properties a = new Properties();
        a.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(a)) {
            try {
                ConfigResource r = new ConfigResource(ConfigResource.Type.GROUP, group);
                admin.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(
                    new ConfigEntry("share.auto.offset.reset", "earliest"),
                    AlterConfigOp.OpType.SET)))).all().get();
                System.out.println("EARLIEST config");
            } catch (Exception e) {
                admin.alterShareGroupOffsets(group, Map.of(new TopicPartition(topic, 0), 0L)).all().get();
                System.out.println("EARLIEST offsets (" + e.getMessage() + ")");
            }
        }
    }

    static void consume(String bootstrap, String topic, String group, String mode, int n, int members)
            throws Exception {
        AtomicBoolean stop = new AtomicBoolean(false);
        List<Thread> threads = new ArrayList<>();
        for (int m = 0; m < members; m++) {
            final int id = m;
            Thread t = new Thread(() -> {
                try {
                    member(bootstrap, topic, group, mode, id, stop);
                } catch (Exception e) {
                    System.out.println("ERROR member " + id + ": " + e);
                    e.printStackTrace();
                }
            });
            t.start();
            threads.add(t);
        }
        long deadline = System.currentTimeMillis() + (mode.equals("run") ? 300_000 : 120_000);
        while (System.currentTimeMillis() < deadline) {
            int expectedRejects = 0;
            for (int i = 0; i < n; i++) if (mode.equals("mixed") && i % 10 == 7) expectedRejects++;
            if (accepted.size() + rejected.size() >= n && rejected.size() == expectedRejects) break;
            Thread.sleep(100);
        }
        stop.set(true);
        for (Thread t : threads) t.join(60_000);
        boolean ok = accepted.size() + rejected.size() >= n;
        System.out.println((ok ? "DONE " : "INCOMPLETE ") + accepted.size() + " accepted "
            + rejected.size() + " rejected");
        System.out.flush();
        System.exit(ok ? 0 : 1);
    }

    static void member(String bootstrap, String topic, String group, String mode, int id, AtomicBoolean stop) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("client.id", "share-" + id);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("share.acknowledgement.mode", "explicit");
        c.put("max.poll.records", "7");
        KafkaShareConsumer<String, String> consumer = new KafkaShareConsumer<>(c);
        consumer.subscribe(List.of(topic));
        try {
            while (!stop.get()) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                if (records.isEmpty()) continue;
                if (mode.equals("close") && id == 0) {
                    for (ConsumerRecord<String, String> r : records)
                        System.out.println("GOT " + r.value() + " " + id + " " + r.deliveryCount().orElse((short) -1) + " (closing)");
                    System.out.flush();
                    consumer.close();
                    System.out.println("CLOSED member 0");
                    return;
                }
                Map<String, AcknowledgeType> decided = new java.util.HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    String v = r.value();
                    short count = r.deliveryCount().orElse((short) -1);
                    System.out.println("GOT " + v + " " + id + " " + count);
                    if (accepted.contains(v)) System.out.println("VIOLATION " + v);
                    int i = Integer.parseInt(v.substring(2));
                    AcknowledgeType t = AcknowledgeType.ACCEPT;
                    if (mode.equals("mixed") && i % 10 == 7) t = AcknowledgeType.REJECT;
                    if (mode.equals("mixed") && i % 10 == 3 && count == 1) t = AcknowledgeType.RELEASE;
                    consumer.acknowledge(r, t);
                    decided.put(v, t);
                }
                Map<TopicIdPartition, Optional<KafkaException>> result = consumer.commitSync();
                boolean failed = result.values().stream().anyMatch(Optional::isPresent);
                if (failed) {
                    System.out.println("ACKFAIL " + result);
                    continue;
                }
                for (Map.Entry<String, AcknowledgeType> e : decided.entrySet()) {
                    switch (e.getValue()) {
                        case ACCEPT -> { accepted.add(e.getKey()); System.out.println("ACCEPTED " + e.getKey()); }
                        case REJECT -> { rejected.add(e.getKey()); System.out.println("REJECTED " + e.getKey()); }
                        default -> { released.add(e.getKey()); System.out.println("RELEASED " + e.getKey()); }
                    }
                }
                System.out.flush();
                if (mode.equals("run")) Thread.sleep(50);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            try { consumer.close(); } catch (Exception e) { /* already closed */ }
        }
    }
}

// Testcontainers for Java's org.testcontainers.kafka.KafkaContainer against Sluice's image.
//
//   java -cp 'LIB/*' TcKafka.java IMAGE
//
// Starts the image with the module's own start-up (the image declared a compatible
// substitute for apache/kafka, as a user's code must), then produces keyed records through
// the mapped port with kafka-clients and consumes them back in a consumer group. Prints
// `start: SECONDS` (the module's start, up to its readiness log line) and `ok: N keyed
// records` on success; exits non-zero otherwise. The caller points DOCKER_HOST at the
// engine and sets TESTCONTAINERS_RYUK_DISABLED=true when no reaper image can be pulled.

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.testcontainers.kafka.KafkaContainer;
import org.testcontainers.utility.DockerImageName;

public class TcKafka {
    static final List<Map.Entry<String, String>> RECORDS = List.of(
        Map.entry("user-1", "login ok"),
        Map.entry("user-2", "h\u00e9llo w\u00f6rld \u2713"),
        Map.entry("user-1", "tab\tseparated\tvalue"),
        Map.entry("user-3", "{\"json\": [1, 2, 3]}"));
    static final Duration DEADLINE = Duration.ofSeconds(60);

    public static void main(String[] args) throws Exception {
        DockerImageName image = DockerImageName.parse(args[0]).asCompatibleSubstituteFor("apache/kafka");
        try (KafkaContainer kafka = new KafkaContainer(image)) {
            long t0 = System.nanoTime();
            kafka.start();
            System.out.printf("start: %.2f%n", (System.nanoTime() - t0) / 1e9);
            String bootstrap = kafka.getBootstrapServers();
            String topic = "tc-java";

            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("acks", "all");
            try (KafkaProducer<String, String> producer =
                    new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
                for (Map.Entry<String, String> r : RECORDS) {
                    producer.send(new ProducerRecord<>(topic, r.getKey(), r.getValue())).get();
                }
            }

            Properties c = new Properties();
            c.put("bootstrap.servers", bootstrap);
            c.put("group.id", topic + "-group");
            c.put("auto.offset.reset", "earliest");
            List<Map.Entry<String, String>> got = new ArrayList<>();
            try (KafkaConsumer<String, String> consumer =
                    new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer())) {
                consumer.subscribe(List.of(topic));
                long end = System.nanoTime() + DEADLINE.toNanos();
                while (got.size() < RECORDS.size() && System.nanoTime() < end) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofSeconds(1))) {
                        got.add(Map.entry(r.key(), r.value()));
                    }
                }
            }
            if (!got.equals(RECORDS)) {
                System.err.println("consumed " + got + ", produced " + RECORDS);
                System.exit(1);
            }
            System.out.printf("ok: %d keyed records through %s%n", got.size(), bootstrap);
        }
    }
}

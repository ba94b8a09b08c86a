// Structured Streaming's word count over Kafka (StructuredKafkaWordCount), for the
// side-by-side benchmark connectors/spark/benches/sidebyside.py: readStream from Kafka,
// split on " " and explode, groupBy("word").count() in update mode, a ProcessingTime trigger,
// local[2].
//
//   java <Spark's --add-opens flags> -cp "jars/*:." StructuredWordCount \
//       BOOTSTRAP TOPIC BATCH_MS EXPECTED_RECORDS CHECKPOINT_DIR
//
// stdout, for the benchmark to parse:
//   BATCH id=<batch id> records=<numInputRows> start=<trigger start, epoch ms> proc=<triggerExecution ms>
//     one per progress event with a batch (a StreamingQueryListener);
//   COUNT <word> <n>  the running totals, once EXPECTED_RECORDS rows were read;
//   DONE
// The sink is foreachBatch collecting each batch's updated counts to the driver (update mode
// emits the new running total of every word the batch touched), so every word's total can be
// checked against the other implementations.

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.explode;
import static org.apache.spark.sql.functions.split;

import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryListener;
import org.apache.spark.sql.streaming.StreamingQueryProgress;
import org.apache.spark.sql.streaming.Trigger;

public final class StructuredWordCount {
    private static final Map<String, Long> TOTALS = new ConcurrentHashMap<>();

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: StructuredWordCount BOOTSTRAP TOPIC BATCH_MS EXPECTED_RECORDS CHECKPOINT_DIR");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        long batchMs = Long.parseLong(args[2]);
        long expected = Long.parseLong(args[3]);
        String checkpoint = args[4];

        SparkSession spark = SparkSession.builder()
            .appName("StructuredKafkaWordCount")
            .master("local[2]")
            .config("spark.ui.enabled", "false")
            // The default 200 shuffle (and state store) partitions are meant for clusters; on
            // two local cores every batch would run 200 tiny stateful tasks. One per core.
            .config("spark.sql.shuffle.partitions", "2")
            .getOrCreate();

        AtomicLong seen = new AtomicLong();
        CountDownLatch done = new CountDownLatch(1);
        spark.streams().addListener(new StreamingQueryListener() {
            @Override
            public void onQueryStarted(QueryStartedEvent event) {
            }

            @Override
            public void onQueryProgress(QueryProgressEvent event) {
                StreamingQueryProgress p = event.progress();
                Long trigger = p.durationMs().get("triggerExecution");
                System.out.printf("BATCH id=%d records=%d start=%d proc=%d%n", p.batchId(),
                    p.numInputRows(), Instant.parse(p.timestamp()).toEpochMilli(),
                    trigger == null ? -1L : trigger);
                System.out.flush();
                if (expected > 0 && seen.addAndGet(p.numInputRows()) >= expected) {
                    done.countDown();
                }
            }

            @Override
            public void onQueryTerminated(QueryTerminatedEvent event) {
                if (event.exception().isDefined()) {
                    System.err.println("query failed: " + event.exception().get());
                    System.exit(1);
                }
            }
        });

        Dataset<Row> lines = spark.readStream()
            .format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
            .selectExpr("CAST(value AS STRING) AS value");
        Dataset<Row> wordCounts = lines
            .select(explode(split(col("value"), " ")).alias("word"))
            .groupBy("word")
            .count();

        StreamingQuery query = wordCounts.writeStream()
            .outputMode("update")
            .trigger(Trigger.ProcessingTime(batchMs, TimeUnit.MILLISECONDS))
            .option("checkpointLocation", checkpoint)
            .foreachBatch((VoidFunction2<Dataset<Row>, Long>) (df, id) -> {
                for (Row r : df.collectAsList()) {
                    TOTALS.put(r.getString(0), r.getLong(1));
                }
            })
            .start();

        done.await();
        for (Map.Entry<String, Long> e : TOTALS.entrySet()) {
            System.out.println("COUNT " + e.getKey() + " " + e.getValue());
        }
        System.out.println("DONE");
        System.out.flush();
        query.stop();
        spark.stop();
    }
}

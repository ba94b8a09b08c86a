//! Flume receivers: push mode takes what a Flume avro sink sends (driven here by the
//! avro-sink side of `sluice-flume-rpc`), pull mode polls a SparkSink (a fake one served by
//! `sluice-flume-rpc`'s server with its own transactions), acks after the job and nacks
//! when it fails, so the events come again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_flume_rpc::{
    AvroSourceClient, ClientOptions, Event, EventBatch, Server, ServerOptions, SparkSinkHandler,
    Status,
};
use sluice_spark::{Error, FlumePullStream, FlumePushStream, PullOptions, PushOptions, RedisSink};
use tokio::sync::watch;

use crate::binary::Spark;
use crate::harness::{eventually, free_port, Redis};

fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} event {i}")).collect()
}

fn body(e: &Event) -> String {
    String::from_utf8(e.body.to_vec()).unwrap()
}

#[tokio::test]
async fn push_mode_delivers_every_event() {
    let mut stream = FlumePushStream::bind(
        "127.0.0.1:0",
        Duration::from_millis(100),
        PushOptions::default(),
    )
    .await
    .unwrap();
    let addr = stream.local_addr().unwrap().to_string();
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let (stop, mut stop_rx) = watch::channel(false);
    let g = got.clone();
    let task = tokio::spawn(async move {
        stream
            .for_each_batch(
                async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                },
                move |batch| {
                    let g = g.clone();
                    async move {
                        g.lock().unwrap().extend(batch.events().iter().map(body));
                        Ok(())
                    }
                },
            )
            .await
    });

    let want = bodies("push", 505);
    let mut sink = AvroSourceClient::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    for chunk in want[..500].chunks(50) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|b| Event::new(b.clone().into_bytes()))
            .collect();
        assert_eq!(sink.append_batch(&events).await.unwrap(), Status::Ok);
    }
    for b in &want[500..] {
        let e = Event::new(b.clone().into_bytes()).with_header("host", "test");
        assert_eq!(sink.append(&e).await.unwrap(), Status::Ok);
    }
    eventually(
        Duration::from_secs(20),
        "every pushed event in a batch",
        || async { (got.lock().unwrap().len() >= want.len()).then_some(()) },
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(*got.lock().unwrap(), want, "every event once, in order");
}

#[tokio::test]
async fn push_mode_answers_failed_when_its_buffer_is_full() {
    let options = PushOptions {
        capacity: 10,
        ..PushOptions::default()
    };
    // A long interval: nothing drains the buffer during the test.
    let mut stream = FlumePushStream::bind("127.0.0.1:0", Duration::from_secs(3600), options)
        .await
        .unwrap();
    let addr = stream.local_addr().unwrap().to_string();
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let (stop, mut stop_rx) = watch::channel(false);
    let g = got.clone();
    let task = tokio::spawn(async move {
        stream
            .for_each_batch(
                async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                },
                move |batch| {
                    let g = g.clone();
                    async move {
                        g.lock().unwrap().extend(batch.events().iter().map(body));
                        Ok(())
                    }
                },
            )
            .await
    });
    let mut sink = AvroSourceClient::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let events = |n: usize| -> Vec<Event> {
        bodies("full", n)
            .into_iter()
            .map(|b| Event::new(b.into_bytes()))
            .collect()
    };
    assert_eq!(sink.append_batch(&events(8)).await.unwrap(), Status::Ok);
    assert_eq!(
        sink.append_batch(&events(3)).await.unwrap(),
        Status::Failed,
        "8 + 3 > 10"
    );
    assert_eq!(sink.append_batch(&events(2)).await.unwrap(), Status::Ok);
    // Shutdown delivers what was buffered in a last batch.
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(got.lock().unwrap().len(), 10);
}

/// A SparkSink with real transactions: taken events wait for ack (gone) or nack (back at
/// the front of the queue).
#[derive(Default)]
struct FakeSink {
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    queue: VecDeque<Event>,
    open: HashMap<String, Vec<Event>>,
    next: u64,
    acks: usize,
    nacks: usize,
}

#[async_trait::async_trait]
impl SparkSinkHandler for FakeSink {
    async fn get_event_batch(&self, n: i32) -> EventBatch {
        let mut s = self.state.lock().unwrap();
        let take = usize::try_from(n).unwrap().min(s.queue.len());
        if take == 0 {
            return EventBatch {
                error_msg: "Tried several times, but did not get any events from the channel!"
                    .into(),
                ..EventBatch::default()
            };
        }
        let events: Vec<Event> = s.queue.drain(..take).collect();
        s.next += 1;
        let seq = format!("seq-{}", s.next);
        s.open.insert(seq.clone(), events.clone());
        EventBatch {
            error_msg: String::new(),
            sequence_number: seq,
            events,
        }
    }

    async fn ack(&self, seq: String) {
        let mut s = self.state.lock().unwrap();
        assert!(s.open.remove(&seq).is_some(), "ack of unknown {seq}");
        s.acks += 1;
    }

    async fn nack(&self, seq: String) {
        let mut s = self.state.lock().unwrap();
        let events = s.open.remove(&seq).expect("nack of an open transaction");
        for e in events.into_iter().rev() {
            s.queue.push_front(e);
        }
        s.nacks += 1;
    }
}

async fn fake_sink(events: &[String]) -> (Arc<FakeSink>, Server) {
    let sink = Arc::new(FakeSink::default());
    sink.state
        .lock()
        .unwrap()
        .queue
        .extend(events.iter().map(|b| Event::new(b.clone().into_bytes())));
    let handler: Arc<dyn SparkSinkHandler> = sink.clone();
    let server = Server::spark_sink("127.0.0.1:0", handler, ServerOptions::default())
        .await
        .unwrap();
    (sink, server)
}

/// Runs a pull stream until `want` events are collected (or the job fails).
async fn pull(
    addr: &str,
    want: usize,
    fail_first: bool,
) -> (Vec<String>, sluice_spark::Result<()>) {
    let options = PullOptions {
        max_batch_size: 100,
        parallelism: 3,
        ..PullOptions::default()
    };
    let mut stream =
        FlumePullStream::new(&[addr.to_owned()], Duration::from_millis(100), options).unwrap();
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let (stop, mut stop_rx) = watch::channel(false);
    let g = got.clone();
    let result = stream
        .for_each_batch(
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            },
            move |batch| {
                let g = g.clone();
                let stop = stop.clone();
                async move {
                    if fail_first && !batch.is_empty() {
                        return Err("the job failed".into());
                    }
                    let mut g = g.lock().unwrap();
                    g.extend(batch.events().iter().map(body));
                    if g.len() >= want {
                        let _ = stop.send(true);
                    }
                    Ok(())
                }
            },
        )
        .await;
    let got = got.lock().unwrap().clone();
    (got, result)
}

#[tokio::test]
async fn pull_mode_delivers_every_event_and_acks_each_transaction() {
    let want = bodies("pull", 1234);
    let (sink, server) = fake_sink(&want).await;
    let addr = server.local_addr().to_string();
    let (mut got, result) =
        tokio::time::timeout(Duration::from_secs(30), pull(&addr, want.len(), false))
            .await
            .expect("pull stream finished");
    result.unwrap();
    // Three requests per batch run at once, so batches interleave; each event comes once.
    got.sort();
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    {
        let s = sink.state.lock().unwrap();
        assert!(s.open.is_empty(), "every transaction settled");
        assert_eq!(s.acks, 13, "1234 events in transactions of at most 100");
        assert_eq!(s.nacks, 0);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn pull_mode_nacks_when_the_job_fails_and_the_events_come_again() {
    let want = bodies("retry", 250);
    let (sink, server) = fake_sink(&want).await;
    let addr = server.local_addr().to_string();
    let (got, result) = pull(&addr, want.len(), true).await;
    assert!(got.is_empty());
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Job { .. }), "{err}");
    {
        let s = sink.state.lock().unwrap();
        assert!(
            s.open.is_empty(),
            "the failed batch's transactions were rolled back"
        );
        assert_eq!(s.nacks, 3, "one nack per transaction of the failed batch");
        assert_eq!(s.acks, 0);
        assert_eq!(s.queue.len(), 250, "every event is back in the sink");
    }
    // A new run gets them all.
    let (mut got, result) =
        tokio::time::timeout(Duration::from_secs(30), pull(&addr, want.len(), false))
            .await
            .expect("second pull stream finished");
    result.unwrap();
    got.sort();
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(got, sorted, "redelivered, each once");
    server.shutdown().await;
}

#[tokio::test]
async fn binary_counts_pushed_events_into_redis() {
    let redis = Redis::start();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let url = redis.url(5);
    let mut spark = Spark::wordcount(&[
        "--flume-push",
        &addr,
        "--redis",
        &url,
        "--batch-interval",
        "100ms",
    ]);
    let mut client = eventually(
        Duration::from_secs(20),
        "the push receiver to listen",
        || async {
            AvroSourceClient::connect(&addr, ClientOptions::default())
                .await
                .ok()
        },
    )
    .await;
    let lines = ["a b c", "a b", "a"];
    for _ in 0..20 {
        let events: Vec<Event> = lines
            .iter()
            .map(|l| Event::new(l.as_bytes().to_vec()))
            .collect();
        assert_eq!(client.append_batch(&events).await.unwrap(), Status::Ok);
    }
    let sink = RedisSink::connect(&url, "wc").await.unwrap();
    let want: HashMap<String, i64> = [
        ("a".to_owned(), 60),
        ("b".to_owned(), 40),
        ("c".to_owned(), 20),
    ]
    .into();
    eventually(Duration::from_secs(20), "the counts in redis", || async {
        (sink.counts().await.unwrap() == want).then_some(())
    })
    .await;
    let status = spark.interrupt(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}\n{}", spark.stderr());
    let out = spark.stdout.snapshot();
    let received: usize = out
        .iter()
        .filter_map(|l| {
            l.strip_prefix("Received ")?
                .strip_suffix(" flume events.")?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(received, 60, "every event in a printed batch");
}

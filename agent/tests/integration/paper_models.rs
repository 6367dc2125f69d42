//! A paper session whose strategy asks a model: the asks go through the router of its
//! `[models]` config to a real `kairos worker` serving a forecaster trained here, the answers
//! come back as data events while the Binance feed (a real recording served on 127.0.0.1)
//! goes on, each is recorded with its latency, and a backtest's service replays the
//! recording to the same answers. The worker is killed mid-session: the asks after it fail
//! within the route's deadline, and the session goes on.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use kairos_agent::paper::{AgentFile, run_with};
use kairos_engine::{Answering, Models as _};
use kairos_feeds::testkit::{self, BinanceRecording, Faults};
use kairos_models::asks::{Answers, Latency, Recording, Simulated};
use kairos_strategies::{
    AskId, Bar, Context, Data, ModelAnswer, ModelAsk, ModelInput, Strategy, Timestamp, Trade,
};
use tokio::sync::watch;

use crate::worker::{KEY, Worker};

/// The route's deadline.
const DEADLINE_MS: u64 = 1500;
/// Forecasts asked of the worker: half before it is killed, half after.
const ASKS: usize = 10;

struct Asker {
    bars: Vec<Bar>,
    need: usize,
    asked: Vec<(AskId, ModelAsk)>,
    answers: Vec<ModelAnswer>,
    in_flight: bool,
    asked_nope: bool,
    kill: Box<dyn FnMut() + Send>,
    stop: watch::Sender<bool>,
}

impl Asker {
    fn ask(&mut self, ctx: &mut Context, model: &str, offset: usize) {
        let input = ModelInput::Forecast { bars: self.bars[offset..offset + self.need].to_vec() };
        let id = ctx.ask(model, input.clone(), offset as u64).expect("a valid ask");
        let ask = ModelAsk { id, model: model.into(), input, tag: offset as u64, at: ctx.now() };
        self.asked.push((id, ask));
    }
}

impl Strategy for Asker {
    fn on_trade(&mut self, ctx: &mut Context, _t: &Trade) {
        if !self.asked_nope {
            self.asked_nope = true;
            self.ask(ctx, "nope", 0);
        }
        let fc = self.asked.iter().filter(|(_, a)| a.model == "fc").count();
        if self.in_flight || fc >= ASKS {
            return;
        }
        self.in_flight = true;
        self.ask(ctx, "fc", fc * 7);
    }

    fn on_data(&mut self, ctx: &mut Context, data: &Data) {
        let a = data.get::<ModelAnswer>().expect("only model answers come as data here");
        assert_eq!(data.ts, a.at);
        assert!(ctx.now() >= a.at, "delivered at its time");
        self.answers.push(a.clone());
        if &*a.model != "fc" {
            return;
        }
        self.in_flight = false;
        let fc = self.answers.iter().filter(|a| &*a.model == "fc").count();
        if fc == ASKS / 2 {
            (self.kill)();
        }
        if fc == ASKS {
            let _ = self.stop.send(true);
        }
    }
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn a_paper_strategy_asks_a_worker_through_the_router_and_the_recording_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let (feed, data) = (
        root.join("binance-ws/spot/btcusdt_20240808.gz"),
        root.join("bars/btc-perp-20211231-20220201_1m.csv"),
    );
    if !feed.exists() || !data.exists() {
        assert!(std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(), "no ../shared/data");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("fc");
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["train", "--data", data.to_str().unwrap(), "--epochs", "1"])
        .args(["--out", model.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut worker = Worker::start("", &["--forecaster", model.to_str().unwrap()], &[]);
    rt.block_on(worker.ready());

    let key = dir.path().join("worker.key");
    std::fs::write(&key, KEY).unwrap();
    let router = dir.path().join("router.toml");
    std::fs::write(
        &router,
        format!(
            "[[endpoints]]\nname = \"w1\"\nurl = \"{}\"\napi_key_file = {key:?}\nprobe_path = \"\"\n\
             [[routes]]\nmodel = \"fc\"\ntargets = [{{ endpoint = \"w1\", model = \"fc\" }}]\n\
             deadline_ms = {DEADLINE_MS}\n",
            worker.url
        ),
    )
    .unwrap();
    let answers_file = dir.path().join("answers.jsonl");

    let rec = Arc::new(BinanceRecording::read(&feed).unwrap());
    let at = rt.block_on(testkit::serve(rec, Faults::default())).unwrap();
    let cfg: AgentFile = toml::from_str(&format!(
        "strategy = \"asker\"\nduration_s = 120\n\
         [instruments.BTCUSDT]\ntick_size = 0.01\nlot_size = 0.00001\n\
         [[binance]]\nmarket = \"spot\"\nsymbols = [\"BTCUSDT\"]\nws_url = \"{}\"\nrest_url = \"{}\"\n\
         [models]\nrouter = {router:?}\nrecord_answers = {answers_file:?}\n",
        at.ws, at.rest
    ))
    .unwrap();

    let series = kairos_backtests::data::load(&data).unwrap();
    let forecaster = Arc::new(
        kairos_models::forecast::Forecaster::load(&model, &kairos_models::Device::Cpu).unwrap(),
    );
    let need = kairos_models::features::WARMUP + forecaster.window();
    let (stop, stop_rx) = watch::channel(false);
    let pid = worker.pid().to_string();
    let asker = Asker {
        bars: series.bars[2_000..2_000 + need + 7 * ASKS].to_vec(),
        need,
        asked: Vec::new(),
        answers: Vec::new(),
        in_flight: false,
        asked_nope: false,
        kill: Box::new(move || {
            assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
        }),
        stop,
    };
    let (_report, s) = rt.block_on(run_with(&cfg, asker, stop_rx)).unwrap();
    drop(rt);

    // The unknown route fails at once, naming it; it does not hold up the rest.
    let nope = s.answers.iter().find(|a| &*a.model == "nope").expect("an answer to every ask");
    assert!(nope.failure().unwrap().contains("nope"), "{nope:?}");
    let fc: Vec<&ModelAnswer> = s.answers.iter().filter(|a| &*a.model == "fc").collect();
    assert_eq!(fc.len(), ASKS, "{:?}", s.answers);
    for (i, a) in fc.iter().enumerate() {
        let ask = &s.asked.iter().find(|(id, _)| *id == a.ask).unwrap().1;
        assert_eq!((a.tag, a.asked_at), (ask.tag, ask.at));
        assert!(a.latency_ns() > 0);
        if i < ASKS / 2 {
            // The worker's answer is the forecaster's own prediction on those bars.
            let ModelInput::Forecast { bars } = &ask.input else { unreachable!() };
            let mut stream = kairos_models::forecast::ForecastStream::new(forecaster.clone());
            let want = bars.iter().map(|b| stream.update(b)).last().flatten().unwrap();
            assert_eq!(a.forecast(), Some(want), "{a:?}");
            assert_eq!(a.result.as_ref().unwrap().endpoint, "w1");
        } else {
            // Killed: a failure, never a malformed answer, and within the deadline (with
            // room for a 2-core machine's scheduler).
            assert!(a.failure().is_some(), "{a:?}");
            assert!(a.latency_ns() < (DEADLINE_MS as i64 + 1_000) * 1_000_000, "{a:?}");
        }
    }

    // Every answer was recorded with its latency, and a backtest's service gives each ask
    // the same answer after the same delay.
    let recording = Recording::load(&answers_file).unwrap();
    assert_eq!(recording.len(), ASKS + 1);
    let mut sim = Simulated::new(
        Answers { recording: Some(Arc::new(recording)), local: None },
        Latency::Recorded,
        0,
    );
    for a in &s.answers {
        let mut ask = s.asked.iter().find(|(id, _)| *id == a.ask).unwrap().1.clone();
        ask.at = Timestamp(ask.at.0 + 3_600_000_000_000); // another run, an hour later
        let Answering::At(r) = sim.ask(ask.clone()) else { panic!("answered at once") };
        assert_eq!(r.latency_ns(), a.latency_ns(), "{a:?}");
        assert_eq!(r.forecast(), a.forecast());
        assert_eq!(r.failure().is_some(), a.failure().is_some());
    }
}

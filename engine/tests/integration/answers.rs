//! Model answers: a strategy asks through its context and hears back as a data event, at the
//! time the answer arrives.

use std::sync::Arc;

use kairos_engine::{Answering, Models};
use kairos_strategies::{
    Bar, Context, Data, MarketEvent, ModelAnswer, ModelAsk, ModelInput, ModelOutput, ModelReply,
    Side, Strategy, Timer, Timestamp, Trade,
};

use crate::common::{BTC, engine, instant, ms};

/// Asks on every trade; records what it hears, and when.
#[derive(Default)]
struct Asker {
    asks: u32,
    /// (ctx.now(), what)
    heard: Vec<(Timestamp, String)>,
    /// Ask from `on_data` once (a chain of asks).
    chain: bool,
}

impl Strategy for Asker {
    fn on_trade(&mut self, ctx: &mut Context, t: &Trade) {
        self.heard.push((ctx.now(), format!("trade {}", t.price)));
        self.asks += 1;
        ctx.ask("fc", ModelInput::Embed { texts: vec![format!("{}", t.price)] }, self.asks as u64)
            .expect("a valid ask");
    }
    fn on_data(&mut self, ctx: &mut Context, data: &Data) {
        let a = data.get::<ModelAnswer>().expect("a model answer");
        assert_eq!(&*data.source, "model:fc");
        assert_eq!(data.ts, a.at);
        let what = match (&a.result, a.embeddings()) {
            (Ok(_), Some(e)) => format!("answer {} = {}", a.tag, e[0][0]),
            (Err(f), _) => format!("failure {}: {}", a.tag, f.reason),
            _ => unreachable!(),
        };
        self.heard.push((ctx.now(), what));
        if self.chain {
            self.chain = false;
            ctx.ask("fc", ModelInput::Embed { texts: vec!["again".into()] }, 99).unwrap();
        }
    }
    fn on_timer(&mut self, ctx: &mut Context, t: &Timer) {
        self.heard.push((ctx.now(), format!("timer {}", t.tag)));
    }
}

/// Answers each ask with its tag after `latency(tag)` ms.
struct Delayed(fn(u64) -> i64);

impl Models for Delayed {
    fn ask(&mut self, ask: ModelAsk) -> Answering {
        let text = match &ask.input {
            ModelInput::Embed { texts } => texts[0].clone(),
            _ => unreachable!(),
        };
        Answering::At(ModelAnswer {
            ask: ask.id,
            model: Arc::from(ask.model.as_str()),
            tag: ask.tag,
            asked_at: ask.at,
            at: Timestamp(ask.at.0 + (self.0)(ask.tag) * 1_000_000),
            result: Ok(ModelReply {
                output: ModelOutput::Embeddings(vec![vec![text.parse().unwrap_or(-1.0)]]),
                endpoint: "test".into(),
                model: "fc".into(),
            }),
        })
    }
}

fn trade_at(
    e: &mut kairos_engine::Engine<kairos_engine::paper::PaperVenue>,
    s: &mut Asker,
    t: i64,
    p: f64,
) {
    e.market(
        s,
        &MarketEvent::Trade(Trade {
            instrument: BTC,
            ts: ms(t),
            price: p,
            size: 1.0,
            aggressor: Side::Buy,
        }),
    );
}

fn heard(s: &Asker) -> Vec<(i64, String)> {
    s.heard.iter().map(|(t, w)| (t.0 / 1_000_000, w.clone())).collect()
}

#[test]
fn an_answer_arrives_at_the_ask_time_plus_its_latency_in_time_order_with_the_events() {
    let mut e = engine(instant());
    e.set_models(Box::new(Delayed(|_| 50)));
    let mut s = Asker::default();
    e.start(&mut s);
    trade_at(&mut e, &mut s, 1_000, 1.0);
    trade_at(&mut e, &mut s, 1_040, 2.0); // the first answer is not there yet
    trade_at(&mut e, &mut s, 1_060, 3.0); // it arrived at 1,050, before this trade
    assert_eq!(e.answers_waiting(), 2);
    e.stop(&mut s);
    assert_eq!(
        heard(&s),
        [
            (1_000, "trade 1".to_string()),
            (1_040, "trade 2".into()),
            (1_050, "answer 1 = 1".into()),
            (1_060, "trade 3".into()),
        ]
    );
}

#[test]
fn answers_that_overtake_each_other_arrive_in_arrival_order_and_after_a_timer_at_the_same_instant()
{
    let mut e = engine(instant());
    // The first ask takes 100 ms, the second 10 ms.
    e.set_models(Box::new(Delayed(|tag| if tag == 1 { 100 } else { 10 })));
    let mut s = Asker::default();
    e.start(&mut s);
    trade_at(&mut e, &mut s, 1_000, 1.0);
    e.ctx.schedule(ms(1_100), 7);
    e.run_pending(&mut s);
    trade_at(&mut e, &mut s, 1_020, 2.0);
    trade_at(&mut e, &mut s, 2_000, 3.0);
    assert_eq!(
        heard(&s),
        [
            (1_000, "trade 1".to_string()),
            (1_020, "trade 2".into()),
            (1_030, "answer 2 = 2".into()),
            (1_100, "timer 7".into()),
            (1_100, "answer 1 = 1".into()),
            (2_000, "trade 3".into()),
        ]
    );
}

#[test]
fn an_answer_without_latency_arrives_before_the_next_event_at_the_asks_time() {
    let mut e = engine(instant());
    e.set_models(Box::new(Delayed(|_| 0)));
    let mut s = Asker { chain: true, ..Asker::default() };
    e.start(&mut s);
    trade_at(&mut e, &mut s, 1_000, 5.0);
    // Delivered by the settle after the hook, and the ask made from on_data as well.
    assert_eq!(e.answers_waiting(), 0);
    assert_eq!(
        heard(&s),
        [
            (1_000, "trade 5".to_string()),
            (1_000, "answer 1 = 5".into()),
            (1_000, "answer 99 = -1".into())
        ]
    );
}

#[test]
fn without_a_model_service_every_ask_fails_at_once_saying_why() {
    let mut e = engine(instant());
    let mut s = Asker::default();
    e.start(&mut s);
    trade_at(&mut e, &mut s, 1_000, 1.0);
    let h = heard(&s);
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[1].0, 1_000);
    assert!(h[1].1.starts_with("failure 1: this run has no model service"), "{}", h[1].1);
}

#[test]
fn a_live_answer_handed_in_later_reaches_on_data_and_unanswered_asks_are_reported() {
    struct Later(Arc<std::sync::Mutex<Vec<ModelAsk>>>, Arc<std::sync::atomic::AtomicUsize>);
    impl Models for Later {
        fn ask(&mut self, ask: ModelAsk) -> Answering {
            self.0.lock().unwrap().push(ask);
            Answering::Later
        }
        fn unanswered(&mut self, asks: usize) {
            self.1.store(asks + 100, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut e = engine(instant());
    e.set_models(Box::new(Later(sent.clone(), left.clone())));
    let mut s = Asker::default();
    e.start(&mut s);
    trade_at(&mut e, &mut s, 1_000, 1.0);
    let ask = sent.lock().unwrap().pop().expect("the ask went to the service");
    assert_eq!((ask.model.as_str(), ask.tag, ask.at), ("fc", 1, ms(1_000)));
    e.answer(
        &mut s,
        ModelAnswer {
            ask: ask.id,
            model: "fc".into(),
            tag: 1,
            asked_at: ask.at,
            at: ms(1_250),
            result: Ok(ModelReply {
                output: ModelOutput::Embeddings(vec![vec![4.0]]),
                endpoint: "w1".into(),
                model: "m".into(),
            }),
        },
    );
    e.stop(&mut s);
    assert_eq!(heard(&s)[1], (1_250, "answer 1 = 4".into()));
    assert_eq!(left.load(std::sync::atomic::Ordering::SeqCst), 100);
}

#[test]
fn asks_that_cannot_be_sent_are_refused_by_the_context_naming_the_field() {
    let mut ctx = Context::new(vec![kairos_strategies::Instrument::new("BTCUSDT", "x")], 1.0);
    let bar = Bar {
        instrument: BTC,
        ts: ms(0),
        open: 1.0,
        high: 1.0,
        low: f64::NAN,
        close: 1.0,
        volume: 1.0,
    };
    let cases = [
        ("", ModelInput::Embed { texts: vec!["a".into()] }, "the model name is empty"),
        ("m", ModelInput::Embed { texts: vec![] }, "no texts"),
        ("m", ModelInput::Embed { texts: vec!["a".into(), String::new()] }, "texts[1] is empty"),
        ("m", ModelInput::Forecast { bars: vec![bar] }, "bars[0]: prices must be finite"),
        (
            "m",
            ModelInput::Chat { messages: vec![], max_tokens: 8, temperature: 0.0 },
            "at least one message",
        ),
        (
            "m",
            ModelInput::Completion { prompt: "p".into(), max_tokens: 8, temperature: f32::NAN },
            "temperature NaN",
        ),
    ];
    for (model, input, want) in cases {
        let e = ctx.ask(model, input, 0).expect_err(want).to_string();
        assert!(e.contains(want), "{e} should say {want}");
    }
    assert!(!ctx.has_asks() && !ctx.asked());
}

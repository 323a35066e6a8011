//! Pods that escaped injection (issue 13, docs/escaped.md): the real webhook binary against
//! the local stand-in for the Kubernetes API (`common/kube_api.rs`, not a real API server),
//! which serves pods (list, watch, get) and counts the requests it gets. The pods are put
//! straight into the stand-in, as pods created while the webhook did not answer would be.

mod common;

use std::time::{Duration, Instant};

use common::kube_api::{Kind, KubeApi};
use common::webhook::Webhook;
use serde_json::{json, Value};

const VALUES: &str = "linkerdVersion: test-version\n";

/// The chart's default namespace selector, as the chart passes it.
const NAMESPACE_SELECTOR: &str = r#"{"matchExpressions":[{"key":"config.linkerd.io/admission-webhooks","operator":"NotIn","values":["disabled"]}]}"#;

fn app() -> Value {
    json!({"containers": [{"name": "app", "image": "example/app:1",
                            "ports": [{"containerPort": 8080}]}],
           "serviceAccountName": "default"})
}

async fn uninjected(wh: &Webhook) -> (u16, Value) {
    let r = reqwest::get(wh.admin("/uninjected")).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn names(body: &Value) -> Vec<String> {
    body["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}/{}",
                p["namespace"].as_str().unwrap(),
                p["pod"].as_str().unwrap()
            )
        })
        .collect()
}

async fn wait_for(what: &str, deadline: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !ok().await {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn not_injected_events(api: &KubeApi) -> Vec<Value> {
    api.events()
        .into_iter()
        .filter(|e| e["reason"] == json!("NotInjected"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_started_without_a_proxy_are_reported_and_no_others() {
    let api = KubeApi::start().await;
    let enabled = json!({"linkerd.io/inject": "enabled"});
    api.add_namespace("shop", enabled.clone());
    api.add_namespace("plain", json!({}));
    api.add_labelled_namespace(
        "excluded",
        enabled.clone(),
        json!({"config.linkerd.io/admission-webhooks": "disabled"}),
    );
    let grace = Duration::from_secs(3);
    let flags = [
        "--uninjected-grace-period=3s",
        "--uninjected-scan-interval=200ms",
        &format!("--uninjected-namespace-selector={NAMESPACE_SELECTOR}"),
    ];
    let wh = Webhook::start(&api, VALUES, &flags).await;
    let (status, body) = uninjected(&wh).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["grace_period_seconds"], json!(3.0));
    // The pods start now, while the webhook runs, as if it had not answered for them.
    let rs = Some(("ReplicaSet", "web-7d9f8b6c5"));
    api.add_pod("shop", "web-7d9f8b6c5-x2x9q", json!({}), app(), rs, 0);
    let mut host = app();
    host["hostNetwork"] = json!(true);
    api.add_pod("shop", "host", json!({}), host, None, 0);
    let opted_out = json!({"linkerd.io/inject": "disabled"});
    api.add_pod("shop", "opted-out", opted_out, app(), None, 0);
    let mut meshed = app();
    meshed["initContainers"] = json!([{"name": "linkerd-proxy", "image": "proxy"}]);
    let version = json!({"linkerd.io/proxy-version": "edge-26.8.3"});
    api.add_pod("shop", "meshed", version, meshed, None, 0);
    api.add_pod("plain", "app", json!({}), app(), None, 0);
    api.add_pod("excluded", "app", json!({}), app(), None, 0);

    // Within the grace period, nothing: the pods may be being admitted right now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(names(&uninjected(&wh).await.1), Vec::<String>::new());
    wait_for(
        "the escaped pod",
        grace + Duration::from_secs(5),
        async || !names(&uninjected(&wh).await.1).is_empty(),
    )
    .await;
    let body = uninjected(&wh).await.1;
    assert_eq!(names(&body), ["shop/web-7d9f8b6c5-x2x9q"], "{body}");
    let pod = &body["pods"][0];
    assert_eq!(pod["owner_kind"], json!("ReplicaSet"));
    assert_eq!(pod["owner_name"], json!("web-7d9f8b6c5"));
    let age = pod["age_seconds"].as_i64().expect("an age");
    assert!((3..=15).contains(&age), "{pod}");
    assert!(
        pod["why"]
            .as_str()
            .unwrap()
            .starts_with("its namespace \"shop\" has the annotation \"linkerd.io/inject\""),
        "{pod}"
    );
    assert!(wh
        .metrics()
        .await
        .contains("proxy_injector_uninjected_pods{namespace=\"shop\"} 1\n"));
    wait_for(
        "the NotInjected event",
        Duration::from_secs(5),
        async || !not_injected_events(&api).is_empty(),
    )
    .await;
    assert!(wh.log().contains("pod escaped injection"), "{}", wh.log());

    // Steady state: more scans, no more API calls, no second Event. Two GETs in all: the
    // escaped pod and the hostNetwork pod (a suspect by its annotations, cleared by its
    // spec); the others are ruled out from memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = not_injected_events(&api);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["regarding"]["kind"], json!("Pod"));
    assert_eq!(events[0]["regarding"]["name"], json!("web-7d9f8b6c5-x2x9q"));
    assert_eq!(events[0]["type"], json!("Warning"));
    assert_eq!(api.requests(Kind::Pod, "get"), 2);
    assert_eq!(api.requests(Kind::Pod, "list"), 1);

    // The pod is re-created (here: deleted): it leaves the report and the gauge.
    api.delete(Kind::Pod, "shop", "web-7d9f8b6c5-x2x9q");
    wait_for(
        "the pod to leave the report",
        Duration::from_secs(5),
        async || names(&uninjected(&wh).await.1).is_empty(),
    )
    .await;
    assert!(!wh
        .metrics()
        .await
        .contains("proxy_injector_uninjected_pods{"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_off_watches_no_pods() {
    let api = KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    api.add_pod("shop", "app", json!({}), app(), None, 600);
    let wh = Webhook::start(&api, VALUES, &["--detect-uninjected=false"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, body) = uninjected(&wh).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.as_str().unwrap().contains("--detect-uninjected=false"));
    assert_eq!(api.requests(Kind::Pod, "list"), 0);
    assert_eq!(api.requests(Kind::Pod, "watch"), 0);
    assert_eq!(api.requests(Kind::Pod, "get"), 0);
    assert!(!wh
        .metrics()
        .await
        .contains("proxy_injector_uninjected_pods{"));
}

fn heal_events(api: &KubeApi) -> Vec<Value> {
    api.events()
        .into_iter()
        .filter(|e| e["reason"] == json!("EvictedForInjection"))
        .collect()
}

/// Eviction statuses by pod, in order.
fn evictions(api: &KubeApi) -> std::collections::BTreeMap<String, Vec<u16>> {
    let mut by_pod = std::collections::BTreeMap::<String, Vec<u16>>::new();
    for (pod, code) in api.evictions() {
        by_pod.entry(pod).or_default().push(code);
    }
    by_pod
}

const HEAL: [&str; 4] = [
    "--heal-uninjected",
    "--heal-interval=300ms",
    "--uninjected-grace-period=1s",
    "--uninjected-scan-interval=200ms",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healing_evicts_owned_pods_once_retries_a_refusal_and_leaves_bare_pods() {
    let api = KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    api.add_pod("shop", "bare", json!({}), app(), None, 600);
    api.add_pod(
        "shop",
        "db-0",
        json!({}),
        app(),
        Some(("StatefulSet", "db")),
        600,
    );
    let rs = Some(("ReplicaSet", "web-7d9f8b6c5"));
    api.add_pod("shop", "web-7d9f8b6c5-x2x9q", json!({}), app(), rs, 600);
    // The first eviction meets a PodDisruptionBudget.
    api.refuse_evictions(1);
    let mut flags = HEAL.to_vec();
    flags.push("--instance=injector-0");
    let wh = Webhook::start(&api, VALUES, &flags).await;
    wait_for("two evictions", Duration::from_secs(15), async || {
        api.evictions()
            .iter()
            .filter(|(_, code)| *code == 201)
            .count()
            == 2
    })
    .await;
    // More rounds: nothing more is evicted, and the bare pod never is.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let done = evictions(&api);
    assert_eq!(done.get("shop/db-0"), Some(&vec![429, 201]), "{done:?}");
    assert_eq!(
        done.get("shop/web-7d9f8b6c5-x2x9q"),
        Some(&vec![201]),
        "{done:?}"
    );
    assert_eq!(done.get("shop/bare"), None, "{done:?}");
    wait_for(
        "the evicted pods to leave the report",
        Duration::from_secs(5),
        async || names(&uninjected(&wh).await.1) == ["shop/bare"],
    )
    .await;
    let metrics = wh.metrics().await;
    assert!(
        metrics.contains("proxy_injector_heal_evictions_total{result=\"evicted\"} 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "proxy_injector_heal_evictions_total{result=\"refused_by_disruption_budget\"} 1\n"
        ),
        "{metrics}"
    );
    wait_for("two heal events", Duration::from_secs(5), async || {
        heal_events(&api).len() == 2
    })
    .await;
    let mut owners: Vec<(String, String)> = heal_events(&api)
        .iter()
        .map(|e| {
            let r = &e["regarding"];
            (
                r["kind"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    owners.sort();
    assert_eq!(
        owners,
        [
            ("ReplicaSet".to_string(), "web-7d9f8b6c5".to_string()),
            ("StatefulSet".to_string(), "db".to_string())
        ]
    );
    let lease = api
        .lease("linkerd", "proxy-injector-healer")
        .expect("the healer's lease");
    assert_eq!(lease["spec"]["holderIdentity"], json!("injector-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_evicts() {
    let api = KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    for i in 0..3 {
        let owner = Some(("ReplicaSet", "web-7d9f8b6c5"));
        api.add_pod("shop", &format!("web-{i}"), json!({}), app(), owner, 600);
    }
    let with = |instance: &'static str| {
        let mut flags = HEAL.to_vec();
        flags.push(instance);
        flags
    };
    let a = Webhook::start(&api, VALUES, &with("--instance=injector-a")).await;
    let b = Webhook::start(&api, VALUES, &with("--instance=injector-b")).await;
    wait_for("three evictions", Duration::from_secs(20), async || {
        api.evictions()
            .iter()
            .filter(|(_, code)| *code == 201)
            .count()
            == 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        api.evictions().len(),
        3,
        "each pod evicted once: {:?}",
        api.evictions()
    );
    let lease = api
        .lease("linkerd", "proxy-injector-healer")
        .expect("the lease");
    let holder = lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(holder == "injector-a" || holder == "injector-b", "{lease}");
    // One Event on the owner, its series counting the three evictions (kube's recorder keeps
    // a series per object and reason).
    let occurrences = |api: &KubeApi| -> u64 {
        heal_events(api)
            .iter()
            .map(|e| e["series"]["count"].as_u64().unwrap_or(1))
            .sum()
    };
    wait_for("three heal events", Duration::from_secs(5), async || {
        occurrences(&api) == 3
    })
    .await;
    for e in heal_events(&api) {
        assert_eq!(e["reportingInstance"], json!(holder), "{e}");
    }
    let (holder_wh, other) = if holder == "injector-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(holder_wh
        .metrics()
        .await
        .contains("proxy_injector_heal_evictions_total{result=\"evicted\"} 3\n"));
    assert!(!other
        .metrics()
        .await
        .contains("proxy_injector_heal_evictions_total{"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_eviction_while_the_webhook_is_not_ready() {
    let api = KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    let mut flags = HEAL.to_vec();
    flags.push("--shutdown-delay=60s");
    let wh = Webhook::start(&api, VALUES, &flags).await;
    // Shutting down: `/ready` turns false for the shutdown delay, and detection goes on.
    let pid = wh.child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(term.unwrap().success());
    wait_for("/ready to turn false", Duration::from_secs(5), async || {
        reqwest::get(wh.admin("/ready"))
            .await
            .is_ok_and(|r| r.status() != 200)
    })
    .await;
    let owner = Some(("ReplicaSet", "web-7d9f8b6c5"));
    api.add_pod("shop", "web-7d9f8b6c5-x2x9q", json!({}), app(), owner, 600);
    wait_for("the escaped pod", Duration::from_secs(10), async || {
        names(&uninjected(&wh).await.1) == ["shop/web-7d9f8b6c5-x2x9q"]
    })
    .await;
    // Many heal intervals (300 ms): a pod re-created now would meet no working webhook.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(api.evictions(), Vec::<(String, u16)>::new());
}

//! Many payouts at once: none lost, none duplicated.

use std::collections::HashSet;
use std::sync::Arc;

use rp_sim::PAYOUT_PATH;

use crate::{Env, eventually, payout_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_payouts_from_fifty_tasks() {
    let env = Arc::new(Env::start().await);
    let mut tasks = Vec::new();
    for task in 0..50 {
        let env = Arc::clone(&env);
        tasks.push(tokio::spawn(async move {
            for n in 0..20 {
                let id = format!("bulk-{task:02}-{n:02}");
                let answer = env
                    .post_signed(PAYOUT_PATH, &payout_request(&id, "77011234567"))
                    .await;
                assert_eq!(answer.status, 200, "{id}: {:?}", answer.json);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let payments = env.sim.payments();
    let ids: HashSet<&str> = payments.iter().map(|p| p.payment_id.as_str()).collect();
    assert_eq!(payments.len(), 1000);
    assert_eq!(ids.len(), 1000);
    eventually(|| env.rx.bodies().len() >= 1000).await;
    eventually(|| env.sim.callbacks().len() >= 1000).await;
    let received: HashSet<String> = env
        .rx
        .callbacks()
        .iter()
        .map(|c| c["payment"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(received.len(), 1000);
    assert_eq!(env.rx.bodies().len(), 1000, "no callback twice");
    assert!(env.sim.callbacks().iter().all(|c| c.delivered()));
    let operations: HashSet<u64> = env
        .sim
        .payments()
        .iter()
        .map(|p| p.operations[0].id.get())
        .collect();
    assert_eq!(operations.len(), 1000, "operation IDs are unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_payment_id_from_twenty_tasks_is_accepted_once() {
    let env = Arc::new(Env::start().await);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let env = Arc::clone(&env);
        tasks.push(tokio::spawn(async move {
            env.post_signed(PAYOUT_PATH, &payout_request("contested", "77011234567"))
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(env.sim.payments().len(), 1);
    env.rx.wait_for("contested", 1).await;
}

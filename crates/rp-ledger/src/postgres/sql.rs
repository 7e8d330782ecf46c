//! Statements on a pooled connection: prepared once per connection (cached), their failures
//! as store errors that say what was being done, and columns read with what is wrong named.

use deadpool_postgres::GenericClient;
use rp_payout::Error;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use super::connect::describe;

/// A failed statement as the store error of `what`.
pub(super) fn failed(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::store(what, describe(&e))
}

/// Column `index` of `row`, or what is wrong with it.
pub(super) fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, String> {
    row.try_get(index).map_err(|e| {
        let name = row.columns().get(index).map_or("?", |c| c.name());
        format!("column {name}: {}", describe(&e))
    })
}

/// Runs a prepared, cached statement on `client`; its rows.
pub(super) async fn query(
    client: &impl GenericClient,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, Error> {
    let statement = client.prepare_cached(sql).await.map_err(failed(what))?;
    client.query(&statement, params).await.map_err(failed(what))
}

/// Runs a prepared, cached statement on `client`; how many rows it changed.
pub(super) async fn execute(
    client: &impl GenericClient,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, Error> {
    let statement = client.prepare_cached(sql).await.map_err(failed(what))?;
    client
        .execute(&statement, params)
        .await
        .map_err(failed(what))
}

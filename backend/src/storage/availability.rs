//! Which database errors mean "the database cannot be reached right now" rather than a bug.
//!
//! The one place this is decided: the API answers such errors 503 with `Retry-After`, and a
//! write that failed this way may have committed without its answer arriving, so its outcome
//! is unknown. A broken connection does not always surface as a connection error: a pooled
//! connection that breaks mid-statement comes back from sea-orm as `DbErr::Query` or
//! `DbErr::Exec` wrapping an I/O error, so the driver's error underneath is looked at too.

use sea_orm::{DbErr, RuntimeErr};

/// Whether `err` says the database is unreachable, restarting or out of connections.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(cause)) | DbErr::Exec(RuntimeErr::SqlxError(cause)) => {
            driver_error_is_unavailable(cause)
        }
        _ => false,
    }
}

/// [`is_unavailable`] for the driver's own error (the bulk statements use sqlx directly).
pub fn driver_error_is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        // A connection cut mid-message leaves the protocol out of step.
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| sqlstate_is_unavailable(&code)),
        _ => false,
    }
}

/// Whether `err` is PostgreSQL choosing this transaction as a deadlock's victim (40P01) or
/// a serialisation failure (40001): nothing of it was committed, and running it again may
/// well succeed.
pub fn is_retryable_conflict(err: &DbErr) -> bool {
    match err {
        DbErr::Query(RuntimeErr::SqlxError(cause)) | DbErr::Exec(RuntimeErr::SqlxError(cause)) => {
            matches!(&**cause, sqlx::Error::Database(db)
                if db.code().is_some_and(|code| code == "40P01" || code == "40001"))
        }
        _ => false,
    }
}

/// SQLSTATE class 08 (connection exception), the server shutting down or starting up
/// (57P01–57P03), and too many connections (53300).
fn sqlstate_is_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnAcquireErr;
    use std::io::{Error, ErrorKind};
    use std::sync::Arc;

    fn query(err: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
    }

    fn exec(err: sqlx::Error) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
    }

    #[test]
    fn a_broken_connection_under_a_query_or_statement_is_unavailability() {
        let reset = || sqlx::Error::Io(Error::new(ErrorKind::ConnectionReset, "reset by peer"));
        let eof = || {
            sqlx::Error::Io(Error::new(
                ErrorKind::UnexpectedEof,
                "expected to read 5 bytes, got 0 bytes at EOF",
            ))
        };
        assert!(is_unavailable(&query(reset())));
        assert!(is_unavailable(&exec(eof())));
        assert!(is_unavailable(&query(sqlx::Error::PoolTimedOut)));
        assert!(is_unavailable(&exec(sqlx::Error::Protocol(
            "unexpected message".into()
        ))));
    }

    #[test]
    fn pool_and_connection_errors_are_unavailability() {
        assert!(is_unavailable(&DbErr::ConnectionAcquire(
            ConnAcquireErr::Timeout
        )));
        assert!(is_unavailable(&DbErr::ConnectionAcquire(
            ConnAcquireErr::ConnectionClosed
        )));
        assert!(is_unavailable(&DbErr::Conn(RuntimeErr::Internal(
            "refused".into()
        ))));
    }

    #[test]
    fn errors_of_the_statement_itself_are_not_unavailability() {
        assert!(!is_unavailable(&query(sqlx::Error::RowNotFound)));
        assert!(!is_unavailable(&exec(sqlx::Error::ColumnNotFound(
            "x".into()
        ))));
        assert!(!is_unavailable(&DbErr::Query(RuntimeErr::Internal(
            "syntax".into()
        ))));
        assert!(!is_unavailable(&DbErr::RecordNotFound("goal".into())));
        assert!(!is_unavailable(&DbErr::Custom("bad input".into())));
    }

    #[test]
    fn connection_sqlstates_are_unavailability_and_constraint_ones_are_not() {
        for code in ["08006", "08001", "57P01", "57P03", "53300"] {
            assert!(sqlstate_is_unavailable(code), "{code}");
        }
        for code in ["23505", "40001", "42601", "57014"] {
            assert!(!sqlstate_is_unavailable(code), "{code}");
        }
    }
}

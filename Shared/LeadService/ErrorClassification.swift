import PostgresNIO

/// How a failed batch should be treated.
package enum FailureKind: Sendable, Equatable {
    /// The database (or the network to it) is unavailable, or a lock conflict: retry the same batch later.
    case transient
    /// The data itself is rejected (constraint, type, syntax): retrying cannot help.
    case permanent
    /// Unknown: retry a bounded number of times.
    case unknown
}

package enum ErrorClassification {
    package static func classify(_ error: any Error) -> FailureKind {
        if let transaction = error as? PostgresTransactionError {
            if let inner = transaction.closureError ?? transaction.commitError ?? transaction.beginError {
                return classify(inner)
            }
            return .transient
        }
        if let psql = error as? PSQLError {
            if let state = psql.serverInfo?[.sqlState] {
                switch state.prefix(2) {
                case "08", "40", "53", "57", "58": return .transient
                case "22", "23", "42", "2B", "0A": return .permanent
                default: return .unknown
                }
            }
            return .transient  // no server answer: connection-level failure
        }
        if error is CancellationError { return .transient }
        if error is PermanentFailure { return .permanent }
        return .unknown
    }
}

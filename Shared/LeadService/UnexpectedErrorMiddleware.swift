import Hummingbird
import Logging
import PostgresNIO

/// Turns an error no handler mapped into a response in the contract's shape, with a log line that says what
/// failed: 503 with `Retry-After` when the failure is transient (database unavailable), otherwise 500. Without it such an error
/// was an empty 500 and nothing in the log. Only the server's message and SQLSTATE of a database error are
/// logged, never the query or its bound values (they can hold contact data).
package struct UnexpectedErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    package init() {}

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            let transient = ErrorClassification.classify(error) == .transient
            context.logger.error(
                "request failed",
                metadata: ["path": "\(request.uri.path)", "error": "\(Self.describe(error))"]
            )
            if transient { throw APIError.unavailable("a service this request needs is unavailable; retry shortly") }
            throw APIError(.internalServerError, code: "internal_error", "the request failed; the service log has the reason")
        }
    }

    /// A description safe to log.
    static func describe(_ error: any Error) -> String {
        if let transaction = error as? PostgresTransactionError,
           let inner = transaction.closureError ?? transaction.commitError ?? transaction.beginError {
            return describe(inner)
        }
        if let psql = error as? PSQLError {
            guard let info = psql.serverInfo else { return "database: \(psql.code)" }
            return "database: \(info[.message] ?? "?") (SQLSTATE \(info[.sqlState] ?? "?"))"
        }
        if let decoding = error as? PostgresDecodingError {
            return "decoding column \(decoding.columnName) (\(decoding.postgresType)) as \(decoding.targetType)"
        }
        return String(describing: type(of: error)) + ": " + String(describing: error)
    }
}

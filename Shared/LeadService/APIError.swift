import Foundation
import HTTPTypes
import Hummingbird
import LeadCore

/// An error at the HTTP edge, rendered as the contract's `{"error": {"code", "message", "field"}}`.
package struct APIError: HTTPResponseError, Sendable {
    package var status: HTTPResponse.Status
    package var code: String
    package var message: String
    package var field: String?
    package var retryAfter: Int?

    package init(_ status: HTTPResponse.Status, code: String, _ message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    package static func validation(_ error: ValidationError) -> APIError {
        APIError(.unprocessableContent, code: error.code, error.message, field: error.field)
    }

    package static let unauthorized = APIError(.unauthorized, code: "unauthorized", "a valid API key is required")

    package static func unavailable(_ message: String, retryAfter: Int = 1) -> APIError {
        APIError(.serviceUnavailable, code: "unavailable", message, retryAfter: retryAfter)
    }

    package struct Body: Encodable, Sendable {
        package struct Detail: Encodable, Sendable {
            package var code: String
            package var message: String
            package var field: String?

            package init(code: String, message: String, field: String?) {
                self.code = code
                self.message = message
                self.field = field
            }
        }

        package var error: Detail
    }

    package var body: Body { Body(error: .init(code: code, message: message, field: field)) }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        let data = try JSONEncoder().encode(body)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Compares secrets in time independent of where they differ (it depends only on `lhs`, the configured secret).
package func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    var difference = UInt8(truncatingIfNeeded: lhs.utf8.count ^ rhs.utf8.count)
    var right = rhs.utf8.makeIterator()
    for byte in lhs.utf8 { difference |= byte ^ (right.next() ?? 0) }
    return difference == 0
}

extension Response {
    /// A JSON response from a `JSONValue` (no Foundation coder on the hot path).
    package static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.data(value)))
        )
    }

    /// A JSON response from an `Encodable` value.
    package static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONCoding.encoder.encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}

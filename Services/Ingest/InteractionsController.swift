import AMQP
import Foundation
import HTTPTypes
import Hummingbird
import LeadCore
import LeadService
import Logging
import NIOCore

/// `POST /v1/interactions` and `POST /v1/interactions/batch` (CONTRACT section 3).
struct InteractionsController: Sendable {
    static let maxEventBytes = 64 * 1024
    static let maxBatchBytes = 1024 * 1024
    static let maxBatchEvents = 500

    let publisher: EventPublisher
    let authenticator: IngestAuthenticator
    let tokens: SessionTokens
    let validator = InteractionValidator()

    func addRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.post(use: single)
        group.post("batch", use: batch)
    }

    // MARK: - Routes

    @Sendable func single(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (json, credential) = try await readJSON(request, limit: Self.maxEventBytes)
        let event: InteractionEvent
        do {
            event = try validator.validate(json)
        } catch {
            throw APIError.validation(error)
        }
        do {
            try await publisher.publish(event)
        } catch {
            context.logger.warning("event not accepted: broker", metadata: ["error": "\(error)"])
            throw Self.unavailable(error)
        }
        context.logger.debug("event accepted", metadata: ["event.id": "\(event.eventID)", "event.type": "\(event.type.rawValue)"])
        var body: [String: JSONValue] = ["event_id": .string(event.eventID.lowercasedString), "status": "accepted"]
        if credential == .publishable { body["session_token"] = .string(tokens.token(for: event.sessionID)) }
        return .json(.object(body), status: .accepted)
    }

    struct BatchResult: Encodable {
        struct Item: Encodable {
            var index: Int
            var eventID: String?
            var status: String
            var error: APIError.Body.Detail?
            enum CodingKeys: String, CodingKey { case index, eventID = "event_id", status, error }
        }

        var accepted: Int
        var rejected: Int
        var results: [Item]
        /// For a browser (publishable key): each accepted session's token, needed to read its prompt.
        var sessionTokens: [String: String]?
        enum CodingKeys: String, CodingKey { case accepted, rejected, results, sessionTokens = "session_tokens" }
    }

    @Sendable func batch(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (json, credential) = try await readJSON(request, limit: Self.maxBatchBytes)
        guard case .object(let body) = json, let events = body["events"]?.arrayValue else {
            throw APIError(.unprocessableContent, code: "invalid_field", "the body must be {\"events\": [...]}", field: "events")
        }
        guard events.count <= Self.maxBatchEvents else {
            throw APIError(.unprocessableContent, code: "invalid_field", "at most \(Self.maxBatchEvents) events per batch", field: "events")
        }
        guard publisher.isConnected else { throw APIError.unavailable("the message broker is unavailable", retryAfter: 5) }

        let receivedAt = Date()
        var results: [BatchResult.Item?] = Array(repeating: nil, count: events.count)
        var valid: [(Int, InteractionEvent)] = []
        for (index, value) in events.enumerated() {
            do {
                valid.append((index, try validator.validate(value, receivedAt: receivedAt)))
            } catch {
                results[index] = .init(index: index, eventID: nil, status: "rejected", error: .init(code: error.code, message: error.message, field: error.field))
            }
        }
        let publisher = self.publisher
        let outcomes = await withTaskGroup(of: (Int, UUID, (any Error)?).self) { group in
            for (index, event) in valid {
                group.addTask {
                    do {
                        try await publisher.publish(event)
                        return (index, event.eventID, nil)
                    } catch {
                        return (index, event.eventID, error)
                    }
                }
            }
            var outcomes: [(Int, UUID, (any Error)?)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        var accepted = 0
        var unavailable = 0
        for (index, eventID, error) in outcomes {
            if let error {
                unavailable += 1
                let detail = Self.unavailable(error)
                results[index] = .init(index: index, eventID: eventID.lowercasedString, status: "rejected", error: detail.body.error)
            } else {
                accepted += 1
                results[index] = .init(index: index, eventID: eventID.lowercasedString, status: "accepted", error: nil)
            }
        }
        if accepted == 0, unavailable > 0 {
            throw APIError.unavailable("the message broker is not confirming", retryAfter: 1)
        }
        let items = results.compactMap { $0 }
        var sessionTokens: [String: String]?
        if credential == .publishable {
            let acceptedIndexes = Set(items.filter { $0.status == "accepted" }.map(\.index))
            sessionTokens = Dictionary(
                valid.filter { acceptedIndexes.contains($0.0) }.map { ($0.1.sessionID, tokens.token(for: $0.1.sessionID)) },
                uniquingKeysWith: { first, _ in first }
            )
        }
        return try .json(
            BatchResult(accepted: accepted, rejected: items.count - accepted, results: items, sessionTokens: sessionTokens),
            status: .accepted
        )
    }

    // MARK: - Request checks

    /// Auth (401, 403 for a browser on a foreign origin), content type (415), size (413), JSON syntax (400),
    /// in that order. Browsers may send `text/plain` (what `sendBeacon` can send without a preflight).
    private func readJSON(_ request: Request, limit: Int) async throws -> (JSONValue, IngestCredential) {
        let credential = try authenticator.authenticate(request)
        let mediaType = request.headers.value(.contentType)?.split(separator: ";").first?.trimmed.lowercased()
        guard mediaType == "application/json" || (credential == .publishable && mediaType == "text/plain") else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", "the body must be application/json")
        }
        if let length = request.headers.value(.contentLength).flatMap({ Int($0) }), length > limit {
            throw Self.tooLarge(limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw Self.tooLarge(limit)
        }
        do {
            return (try JSONBody.decode(buffer.readableBytesView), credential)
        } catch .tooDeep {
            throw APIError(.badRequest, code: "malformed_json", "the JSON is nested more than \(JSONBody.maxDepth) levels deep")
        } catch .malformed(let reason) {
            throw APIError(.badRequest, code: "malformed_json", "the body is not valid JSON: \(reason)")
        }
    }

    private static func tooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "payload_too_large", "the body must be at most \(limit / 1024) KiB")
    }

    private static func unavailable(_ error: any Error) -> APIError {
        guard let error = error as? AMQPError else { return .unavailable("the event could not be published") }
        switch error.code {
        case .notConnected, .connectionLost, .closed: return .unavailable("the message broker is unavailable", retryAfter: 5)
        case .blocked: return .unavailable("the message broker is out of resources", retryAfter: 10)
        case .overloaded: return .unavailable("too many events in flight; retry shortly", retryAfter: 1)
        default: return .unavailable("the message broker did not confirm the event", retryAfter: 1)
        }
    }
}

import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// A local webhook endpoint for tests: records every request, answers what it is told to, and checks
/// Standard Webhooks signatures with its own HMAC (independent of the service's code).
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var id: String
        var timestamp: String
        var signature: String
        var body: Data
        var validSignature: Bool
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    enum Behavior: Sendable {
        case accept
        /// 500 for the first `count` requests, then 2xx.
        case failFirst(Int)
        case gone
        /// Holds every request (recording it only when answered) until `release()`, then 2xx.
        case hold
    }

    let port: Int
    let secret: String
    private let state: Mutex<(behavior: Behavior, received: [Received], answered: Int)>
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    private let held: Mutex<(released: Bool, waiting: [CheckedContinuation<Void, Never>], count: Int)> = Mutex((false, [], 0))

    var url: String { "http://127.0.0.1:\(port)/hooks" }

    init(secret: String, behavior: Behavior = .accept) async throws {
        self.port = TestEnvironment.freePort()
        self.secret = secret
        self.state = Mutex((behavior, [], 0))
        let router = Router()
        router.post("hooks") { [self] request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let data = Data(body.readableBytesView)
            let id = request.headers[HTTPField.Name("webhook-id")!] ?? ""
            let timestamp = request.headers[HTTPField.Name("webhook-timestamp")!] ?? ""
            let signature = request.headers[HTTPField.Name("webhook-signature")!] ?? ""
            let received = Received(
                id: id, timestamp: timestamp, signature: signature, body: data,
                validSignature: Self.verify(secret: secret, id: id, timestamp: timestamp, body: data, signature: signature)
            )
            let probe = request.headers[HTTPField.Name("X-Probe")!] != nil
            if !probe, state.withLock({ if case .hold = $0.behavior { true } else { false } }) {
                await withCheckedContinuation { continuation in
                    let resume = held.withLock { held -> Bool in
                        if held.released { return true }
                        held.waiting.append(continuation)
                        held.count += 1
                        return false
                    }
                    if resume { continuation.resume() }
                }
            }
            let status: HTTPResponse.Status = state.withLock { state in
                state.received.append(received)
                state.answered += 1
                switch state.behavior {
                case .accept, .hold: return .noContent
                case .gone: return .gone
                case .failFirst(let count): return state.answered <= count ? .internalServerError : .ok
                }
            }
            return Response(status: status)
        }
        var logger = Logger(label: "webhook-receiver")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        task.withLock { $0 = Task { try await app.run() } }
        try await eventually("receiver listening") {
            (try? await HTTP.post(url, body: Data(), headers: [("X-Probe", "1")])) != nil ? true : nil
        }
        state.withLock { $0.received.removeAll(); $0.answered = 0 }
    }

    var received: [Received] { state.withLock { $0.received } }

    func setBehavior(_ behavior: Behavior) { state.withLock { $0.behavior = behavior } }

    /// Requests held right now (`.hold`).
    var holding: Int { held.withLock { $0.count } }

    /// Answers every held request, and the ones after it at once.
    func release() {
        let waiting = held.withLock { held in
            held.released = true
            held.count = 0
            defer { held.waiting = [] }
            return held.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    func stop() {
        release()
        task.withLock { $0?.cancel() }
    }

    static func verify(secret: String, id: String, timestamp: String, body: Data, signature: String) -> Bool {
        var message = Data("\(id).\(timestamp).".utf8)
        message.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8)))
        return signature == "v1," + Data(mac).base64EncodedString()
    }
}

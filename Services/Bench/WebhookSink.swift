import Foundation
import Hummingbird
import LeadCore
import Logging
import Synchronization

/// A local webhook endpoint for lead-alerts during the end-to-end run: the arrival time of each lead's first
/// alert, keyed by lead id.
final class WebhookSink: Sendable {
    let arrivals = Stamps()
    let port: Int
    private let task: Task<Void, any Error>

    init(port: Int) {
        self.port = port
        let arrivals = self.arrivals
        let router = Router()
        router.post("hooks") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let now = Date()
            if case .int(let lead)? = (try? JSONParser.parse(body.readableBytesView))?["lead_id"] {
                arrivals.values.withLock { if $0["\(lead)"] == nil { $0["\(lead)"] = now } }
            }
            return Response(status: .noContent)
        }
        var logger = Logger(label: "bench-webhooks")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        task = Task { try await app.run() }
    }

    var url: String { "http://127.0.0.1:\(port)/hooks" }

    func stop() { task.cancel() }
}

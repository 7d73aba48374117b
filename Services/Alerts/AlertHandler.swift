import AMQP
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import Metrics

/// Turns `lead.scored` and `conversion.prompt` messages into alerts, in one statement per batch; then hands
/// their messages to the outbox dispatcher and their webhook deliveries to the deliverer's inbox.
struct AlertHandler: DeliveryHandler {
    struct Message: Sendable {
        var routingKey: String
        var body: JSONValue
    }

    let rules: AlertRules
    let webhookURLs: [String]
    let connection: DedicatedConnection
    let dispatcher: OutboxDispatcher
    let inbox: DeliveryInbox
    /// How long a new delivery is leased to this process (`inbox` must start it within `DeliveryInbox.maxAge`).
    let deliveryLease: Duration
    private let raised = Counter(label: "alerts_raised_total")

    func decode(_ delivery: Delivery) throws(PermanentFailure) -> Message {
        do {
            return Message(routingKey: delivery.routingKey, body: try JSONParser.parse(delivery.body))
        } catch {
            throw PermanentFailure("not JSON: \(error)")
        }
    }

    func shutdown() async {
        await connection.close()
    }

    func handle(_ messages: [Message], logger: Logger) async throws {
        let alerts: [Alert] = messages.compactMap { message in
            switch message.routingKey {
            case "lead.scored": rules.highScore(from: message.body)
            case "conversion.prompt": rules.opportunity(from: message.body)
            default: nil
            }
        }
        guard !alerts.isEmpty else { return }
        let webhookURLs = self.webhookURLs
        let deliveryLease = self.deliveryLease
        // One statement, atomic on its own: no BEGIN and COMMIT round trips.
        let recorded = try await connection.withConnection(logger: logger) { connection in
            try await AlertStore.record(alerts, webhookURLs: webhookURLs, deliveryLease: deliveryLease, on: connection, logger: logger)
        }
        // Committed: publish and deliver now, rather than wait for the relay and the deliverer to claim them.
        dispatcher.dispatch(recorded.messages)
        inbox.post(recorded.deliveries)
        let fresh = recorded.alerts
        for alert in fresh {
            logger.info(
                "alert raised",
                metadata: ["alert.id": "\(alert.id)", "alert.kind": "\(alert.kind.rawValue)", "lead.id": "\(alert.leadID.map(String.init) ?? "-")"]
            )
        }
        raised.increment(by: fresh.count)
    }
}

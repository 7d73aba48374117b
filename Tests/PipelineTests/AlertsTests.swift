import AMQP
import Foundation
import LeadCore
import LeadService
import Logging
import PostgresNIO
import Testing

/// lead-alerts on its own broker and database: alerts fire once per crossing, webhooks are signed, retried,
/// isolated per endpoint, and survive a restart.
@Suite(.serialized) struct AlertsTests {
    static let secret = "test-webhook-secret"

    struct Fixture {
        let stack: PrivateStack
        let database: PostgresClient
        let publisher: AMQPConnection
        let tap: EventTap

        func publish(_ routingKey: String, _ body: [String: Any]) async throws {
            try await publisher.publish(
                OutgoingMessage(
                    exchange: LeadTopology.eventsExchange, routingKey: routingKey,
                    body: try JSONSerialization.data(withJSONObject: body), messageID: UUID().uuidString.lowercased()
                )
            )
        }

        func scored(lead: Int, score: Int, previous: Int?) async throws {
            try await publish("lead.scored", [
                "lead_id": lead, "interaction_id": 1, "event_id": UUID().uuidString.lowercased(), "lead_score": score,
                "previous_score": previous as Any? ?? NSNull(), "engagement_level": "high", "source": "Face Analysis",
                "procedure_name": "Rhinoplasty", "breakdown": [["rule": "type:face_analysis", "points": 80], ["rule": "urgency:immediate", "points": 25], ["rule": "cap", "points": -5]],
            ])
        }

        func alerts(kind: String) async throws -> Int {
            try await database.count("SELECT count(*) FROM alerts WHERE kind = \(kind)")
        }
    }

    func withFixture(name: String, amqpPort: Int, pgPort: Int, _ body: (Fixture) async throws -> Void) async throws {
        let stack = try await PrivateStack.start(name: name, amqpPort: amqpPort, pgPort: pgPort)
        let database = try stack.makeDatabaseClient()
        let publisher = AMQPConnection(
            configuration: try AMQPConfiguration(url: stack.amqpURL), name: "test-events",
            topology: LeadTopology.alerts(.quorum), logger: Logger(label: "test")
        )
        guard await publisher.waitUntilConnected(timeout: .seconds(10)) else { throw TestFailure("cannot connect") }
        let tap = try await EventTap(routingKeys: ["alert.*"], amqpURL: stack.amqpURL)
        try await body(Fixture(stack: stack, database: database, publisher: publisher, tap: tap))
        await tap.close()
        await publisher.close()
        await stack.stop()
    }

    func alerts(_ stack: PrivateStack, urls: [String], label: String) async throws -> ServiceProcess {
        let port = TestEnvironment.freePort()
        return try await ServiceProcess.start(
            "lead-alerts",
            environment: stack.environment.merging([
                "ALERTS_METRICS_PORT": "\(port)", "ALERT_WEBHOOK_URLS": urls.joined(separator: ","),
                "ALERT_WEBHOOK_SECRET": Self.secret, "WEBHOOK_RETRY_BASE_MS": "200", "HIGH_SCORE_THRESHOLD": "80",
            ]) { $1 },
            readyPort: port,
            label: label
        )
    }

    @Test func crossingMakesOneSignedAlertWhateverTheRedeliveries() async throws {
        try await withFixture(name: "alerts-once", amqpPort: 5694, pgPort: 5444) { fixture in
            let receiver = try await WebhookReceiver(secret: Self.secret)
            let service = try await alerts(fixture.stack, urls: [receiver.url], label: "alerts-once")
            try await fixture.scored(lead: 7, score: 60, previous: nil)  // below: nothing
            try await fixture.scored(lead: 7, score: 100, previous: 60)  // the crossing
            try await fixture.scored(lead: 7, score: 100, previous: 60)  // the same message again
            try await fixture.scored(lead: 7, score: 100, previous: 95)  // above already: no crossing
            try await fixture.scored(lead: 8, score: 85, previous: nil)  // a new lead created hot
            let hook = try await eventually("a signed webhook for lead 7") {
                receiver.received.first { ($0.json?["lead_id"] as? Int) == 7 }
            }
            #expect(hook.validSignature)
            #expect(hook.json?["lead_score"] as? Int == 100)
            #expect(hook.json?["reasons"] as? [String] == ["type:face_analysis +80", "urgency:immediate +25", "cap -5"])
            try await eventually("alert for lead 8") { receiver.received.contains { ($0.json?["lead_id"] as? Int) == 8 } ? true : nil }
            #expect(try await fixture.alerts(kind: "high_score") == 2)
            let published = try await eventually("alert.high_score on the bus") {
                let messages = fixture.tap.messages(routingKey: "alert.high_score") { _ in true }
                return messages.count >= 2 ? messages : nil
            }
            #expect(published.count == 2)
            #expect(receiver.received.filter { ($0.json?["lead_id"] as? Int) == 7 }.count == 1)
            #expect(hook.id == hook.json?["alert_id"] as? String)

            // A prompted session with intent ≥ 85 is an opportunity; 84 is not.
            try await fixture.publish("conversion.prompt", ["prompt_id": UUID().uuidString.lowercased(), "session_id": "s-hot", "intent_score": 90, "reason": "intent 90 reached threshold 70", "variant": "A", "fields": ["phone"]])
            try await fixture.publish("conversion.prompt", ["prompt_id": UUID().uuidString.lowercased(), "session_id": "s-warm", "intent_score": 84, "reason": "r", "variant": "A", "fields": ["phone"]])
            try await eventually("an opportunity alert") {
                fixture.tap.messages(routingKey: "alert.conversion_opportunity") { $0["session_id"] as? String == "s-hot" }.first
            }
            #expect(try await fixture.alerts(kind: "conversion_opportunity") == 1)
            try await service.terminate()
            #expect(service.exitStatus == 0)
            receiver.stop()
        }
    }

    @Test func failingEndpointIsRetriedAndADeadOneDelaysNoOther() async throws {
        try await withFixture(name: "alerts-retry", amqpPort: 5695, pgPort: 5445) { fixture in
            let flaky = try await WebhookReceiver(secret: Self.secret, behavior: .failFirst(2))
            let live = try await WebhookReceiver(secret: Self.secret)
            let dead = "http://127.0.0.1:\(TestEnvironment.freePort())/nobody-listens"
            let service = try await alerts(fixture.stack, urls: [dead, flaky.url, live.url], label: "alerts-retry")
            let sent = ContinuousClock.now
            try await fixture.scored(lead: 21, score: 90, previous: 10)
            try await eventually("the live endpoint got the alert") { live.received.isEmpty ? nil : true }
            #expect(ContinuousClock.now - sent < .seconds(3), "a dead endpoint must not delay a live one")
            try await eventually("the flaky endpoint got it on the third attempt") {
                flaky.received.count >= 3 && flaky.received.allSatisfy(\.validSignature) ? true : nil
            }
            try await eventually("delivery recorded as delivered after 3 attempts") {
                try await fixture.database.count(
                    "SELECT count(*) FROM webhook_deliveries WHERE url = \(flaky.url) AND status = 'delivered' AND attempts = 3"
                ) == 1 ? true : nil
            }
            #expect(try await fixture.database.count(
                "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.url = \(flaky.url)"
            ) == 3)
            try await eventually("the dead endpoint is being retried, not dropped") {
                try await fixture.database.count(
                    "SELECT count(*) FROM webhook_deliveries WHERE url = \(dead) AND status = 'pending' AND attempts >= 2"
                ) == 1 ? true : nil
            }
            try await service.terminate()
            flaky.stop()
            live.stop()
        }
    }

    @Test func retriesSurviveARestartAnd410DisablesTheEndpoint() async throws {
        try await withFixture(name: "alerts-restart", amqpPort: 5696, pgPort: 5446) { fixture in
            let receiver = try await WebhookReceiver(secret: Self.secret, behavior: .failFirst(1_000))
            let first = try await alerts(fixture.stack, urls: [receiver.url], label: "alerts-restart-a")
            try await fixture.scored(lead: 31, score: 95, previous: 50)
            try await eventually("a failed attempt") { receiver.received.isEmpty ? nil : true }
            first.kill()
            receiver.setBehavior(.accept)
            let second = try await alerts(fixture.stack, urls: [receiver.url], label: "alerts-restart-b")
            try await eventually("delivered by the restarted service", timeout: .seconds(90)) {
                try await fixture.database.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'") == 1 ? true : nil
            }
            #expect(try await fixture.alerts(kind: "high_score") == 1)

            receiver.setBehavior(.gone)
            try await fixture.scored(lead: 32, score: 95, previous: 50)
            try await eventually("410 disables the endpoint") {
                try await fixture.database.count("SELECT count(*) FROM webhook_endpoints WHERE url = \(receiver.url) AND disabled_at IS NOT NULL") == 1 ? true : nil
            }
            #expect(try await fixture.database.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'disabled'") == 1)
            try await second.terminate()
            receiver.stop()
        }
    }
}

import AsyncHTTPClient
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceLifecycle

/// Delivers pending webhooks: one loop per endpoint, so a slow or dead endpoint never delays another. State
/// lives in `webhook_deliveries` (a restart resumes where it stopped); every attempt is recorded; retries back
/// off exponentially with jitter until `giveUpAfter`; 410 Gone disables the endpoint.
struct WebhookDeliverer: Service, CustomStringConvertible {
    let urls: [String]
    let signer: WebhookSigner
    let schedule: RetrySchedule
    let client: PostgresClient
    let signal: WakeSignal
    let gate: StartGate
    let logger: Logger
    /// Deliveries in flight per endpoint.
    var concurrency = 4
    var requestTimeout: TimeAmount = .seconds(10)

    var description: String { "WebhookDeliverer(\(urls.count) endpoints)" }

    func run() async throws {
        guard await gate.wait() else { return }
        let wakeups = urls.map { _ in WakeSignal() }
        await withTaskGroup(of: Void.self) { group in
            // Fan the shared signal out to every endpoint's loop.
            group.addTask {
                while !Task.isShuttingDownGracefully {
                    await signal.wait(upTo: .seconds(1))
                    for wakeup in wakeups { wakeup.notify() }
                }
            }
            for (url, wakeup) in zip(urls, wakeups) {
                group.addTask { await endpointLoop(url: url, wakeup: wakeup) }
            }
            try? await gracefulShutdown()
            signal.notify()
            for wakeup in wakeups { wakeup.notify() }
            await group.waitForAll()
        }
    }

    private func endpointLoop(url: String, wakeup: WakeSignal) async {
        let logger = {
            var logger = self.logger
            logger[metadataKey: "webhook.url"] = "\(redacted(url))"
            return logger
        }()
        let delivered = Counter(label: "webhook_deliveries_total", dimensions: [("result", "delivered")])
        let failed = Counter(label: "webhook_deliveries_total", dimensions: [("result", "failed_attempt")])
        while !Task.isShuttingDownGracefully {
            do {
                if try await AlertStore.isDisabled(url: url, client: client, logger: logger) {
                    await wakeup.wait(upTo: .seconds(30))
                    continue
                }
                // The lease outlasts one attempt (request timeout + recording); after a crash the delivery is retried then.
                let due = try await AlertStore.claimDue(url: url, limit: concurrency, lease: .seconds(20), client: client, logger: logger)
                if due.isEmpty {
                    await wakeup.wait(upTo: .seconds(1))
                    continue
                }
                await withTaskGroup(of: Void.self) { group in
                    for delivery in due {
                        group.addTask {
                            let ok = await attempt(delivery, logger: logger)
                            (ok ? delivered : failed).increment()
                        }
                    }
                }
            } catch {
                logger.warning("webhook loop failed; retrying", metadata: ["error": "\(String(reflecting: error))"])
                await wakeup.wait(upTo: .seconds(2))
            }
        }
    }

    /// One POST, recorded whatever happens. Returns whether it was delivered.
    private func attempt(_ delivery: AlertStore.Delivery, logger: Logger) async -> Bool {
        let body = Data(delivery.payload.utf8)
        let webhookID = delivery.alertID.uuidString.lowercased()
        let timestamp = Int(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "webhook-id", value: webhookID)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(name: "webhook-signature", value: signer.signature(id: webhookID, timestamp: timestamp, body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        let started = ContinuousClock.now
        var statusCode: Int?
        var errorText: String?
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: requestTimeout)
            statusCode = Int(response.status.code)
            _ = try? await response.body.collect(upTo: 64 * 1024)
        } catch {
            errorText = "\(error)"
        }
        let latency = ContinuousClock.now - started
        let outcome: AlertStore.AttemptOutcome
        if let statusCode, (200..<300).contains(statusCode) {
            outcome = .delivered
        } else if statusCode == 410 {
            outcome = .gone
            logger.warning("webhook endpoint answered 410 Gone; disabling it")
        } else {
            var generator = SystemRandomNumberGenerator()
            let delay = schedule.delay(afterAttempt: delivery.attempts + 1, using: &generator)
            let next = Date().addingTimeInterval(Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
            let giveUp = next.timeIntervalSince(delivery.retrySince) > Double(schedule.giveUpAfter.components.seconds)
            outcome = .retry(next: next, giveUp: giveUp)
            logger.warning(
                giveUp ? "webhook failed; giving up" : "webhook failed; will retry",
                metadata: [
                    "webhook.id": "\(webhookID)", "attempt": "\(delivery.attempts + 1)", "status": "\(statusCode.map(String.init) ?? "-")",
                    "error": "\(errorText ?? "-")", "retry.in": "\(giveUp ? "never" : "\(delay)")",
                ]
            )
        }
        do {
            try await AlertStore.recordAttempt(
                delivery, statusCode: statusCode, latency: latency, error: errorText, outcome: outcome, client: client, logger: logger
            )
        } catch {
            // The lease expires and the delivery is attempted again: at least once, never silently dropped.
            logger.warning("cannot record webhook attempt", metadata: ["error": "\(String(reflecting: error))"])
        }
        if case .delivered = outcome {
            logger.info("webhook delivered", metadata: ["webhook.id": "\(webhookID)", "attempt": "\(delivery.attempts + 1)"])
            return true
        }
        return false
    }

    /// The URL without credentials or query string, for logs.
    private func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(invalid url)" }
        components.user = nil
        components.password = nil
        components.query = nil
        return components.string ?? "(invalid url)"
    }
}

import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus

/// Process-wide set-up, done once in `main`.
package enum Bootstrap {
    /// Logs to stderr at `level`; returns the registry `/metrics` serves.
    package static func process(label: String, logLevel: Logger.Level) -> PrometheusCollectorRegistry {
        LoggingSystem.bootstrap { label in DeferredLogHandler(label: label, logLevel: logLevel) }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// Makes NIO's event loops run Swift Concurrency's tasks when `LEAD_TASKS_ON_EVENT_LOOPS` says `on` (or, unset,
    /// when `enabledByDefault`), so that a task awaiting a database reply or an HTTP response resumes on the loop
    /// that read it instead of being handed to a thread of the global pool.
    static func configureTaskExecutor(enabledByDefault: Bool) throws {
        guard try EnvironmentReader().onOff("LEAD_TASKS_ON_EVENT_LOOPS", default: enabledByDefault) else { return }
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Runs a service's `main`: a configuration error or a start-up failure is one clear log line and exit 1.
    /// `tasksOnEventLoops` is this service's default for `LEAD_TASKS_ON_EVENT_LOOPS`.
    package static func run(label: String, tasksOnEventLoops: Bool = false, _ body: @Sendable () async throws -> Void) async {
        do {
            try configureTaskExecutor(enabledByDefault: tasksOnEventLoops)
            try await body()
        } catch {
            let logger = Logger(label: label)
            logger.critical("\(label) stopped: \(String(describing: error))")
            exit(1)
        }
    }
}

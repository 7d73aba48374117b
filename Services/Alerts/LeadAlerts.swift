import Hummingbird
import LeadService
import Logging

@main
struct LeadAlerts {
    static func main() async {
        await Bootstrap.run(label: "lead-alerts", tasksOnEventLoops: true) {
            let configuration = try ServiceConfiguration()
            let registry = Bootstrap.process(label: "lead-alerts", logLevel: configuration.logLevel)
            let app = try buildAlertsApplication(configuration: configuration, registry: registry)
            try await app.runService()
        }
    }
}

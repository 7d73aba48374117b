import Hummingbird
import LeadService
import Logging

@main
struct LeadAlerts {
    static func main() async {
        Bootstrap.tasksOnEventLoops(enabledByDefault: true)
        await Bootstrap.run(label: "lead-alerts") {
            let configuration = try ServiceConfiguration()
            let registry = Bootstrap.process(label: "lead-alerts", logLevel: configuration.logLevel)
            let app = try buildAlertsApplication(configuration: configuration, registry: registry)
            try await app.runService()
        }
    }
}

import Hummingbird
import LeadService
import Logging

@main
struct LeadAdmin {
    static func main() async {
        await Bootstrap.run(label: "lead-admin") {
            let configuration = try ServiceConfiguration()
            let registry = Bootstrap.process(label: "lead-admin", logLevel: configuration.logLevel)
            let app = try buildAdminApplication(configuration: configuration, registry: registry)
            try await app.runService()
        }
    }
}

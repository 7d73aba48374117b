import Hummingbird
import LeadService
import Logging

@main
struct LeadConversion {
    static func main() async {
        Bootstrap.tasksOnEventLoops(enabledByDefault: true)
        await Bootstrap.run(label: "lead-conversion") {
            let configuration = try ServiceConfiguration()
            let registry = Bootstrap.process(label: "lead-conversion", logLevel: configuration.logLevel)
            let app = try buildConversionApplication(configuration: configuration, registry: registry)
            try await app.runService()
        }
    }
}

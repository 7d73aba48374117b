import Hummingbird
import LeadService
import Logging

@main
struct LeadConversion {
    static func main() async {
        await Bootstrap.run(label: "lead-conversion", tasksOnEventLoops: true) {
            let configuration = try ServiceConfiguration()
            let registry = Bootstrap.process(label: "lead-conversion", logLevel: configuration.logLevel)
            let app = try buildConversionApplication(configuration: configuration, registry: registry)
            try await app.runService()
        }
    }
}

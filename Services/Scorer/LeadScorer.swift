import Hummingbird
import LeadService
import Logging

@main
struct LeadScorer {
    static func main() async {
        await Bootstrap.run(label: "lead-scorer") {
            let configuration = try ServiceConfiguration()
            let registry = Bootstrap.process(label: "lead-scorer", logLevel: configuration.logLevel)
            let app = try buildScorerApplication(configuration: configuration, registry: registry)
            try await app.runService()
        }
    }
}

import Hummingbird
import LeadService
import Logging

@main
struct LeadIngest {
    static func main() async {
        await Bootstrap.run(label: "lead-ingest") {
            let configuration = try ServiceConfiguration()
            let registry = Bootstrap.process(label: "lead-ingest", logLevel: configuration.logLevel)
            let app = try buildIngestApplication(configuration: configuration, registry: registry)
            try await app.runService()
        }
    }
}

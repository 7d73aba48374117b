import ArgumentParser

@main
struct LeadCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leadctl",
        abstract: "Operator tool for the lead pipeline.",
        subcommands: [Migrate.self, Demo.self, DeadLetters.self, Experiment.self, Webhooks.self, Simulate.self, Train.self, Model.self]
    )
}

import Logging

/// Writes the same lines as swift-log's `StreamLogHandler` to stderr, but renders metadata only when a
/// line is written. `StreamLogHandler` re-renders all of its metadata every time a key is set, and
/// Hummingbird sets `hb.request.id` on every request: measured at ~3.5 % of lead-ingest's CPU under load,
/// for lines that, at the usual level, are never written.
struct DeferredLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = logLevel
        handler.metadata = metadata
        handler.log(event: event)
    }
}

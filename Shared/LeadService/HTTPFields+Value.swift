import HTTPTypes

extension HTTPFields {
    /// The same as `self[name]`, without building a joined string when the field appears once (the usual
    /// case): `HTTPFields`' subscript joins the values through a lazy map even then, measured at ~2 % of
    /// lead-ingest's CPU for its four lookups a request.
    package func value(_ name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}

extension HTTPField.Name {
    package static let apiKey = HTTPField.Name("X-API-Key")!
}

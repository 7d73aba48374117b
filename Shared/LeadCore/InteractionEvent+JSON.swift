import Foundation

/// The wire format of an interaction on `leads.interactions`: snake_case keys, RFC 3339 dates with
/// milliseconds, the event id in lower case. Written and read without Foundation's coders (hot path).
extension InteractionEvent {
    package var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "event_id": .string(eventID.lowercasedString),
            "session_id": .string(sessionID),
            "type": .string(type.rawValue),
            "occurred_at": .string(JSONCoding.formatTimestamp(occurredAt)),
            "received_at": .string(JSONCoding.formatTimestamp(receivedAt)),
            "data": .object(data),
        ]
        if let userID { object["user_id"] = .int(userID) }
        if let sourcePage { object["source_page"] = .string(sourcePage) }
        if let contact {
            var fields: [String: JSONValue] = [:]
            if let name = contact.name { fields["name"] = .string(name) }
            if let phone = contact.phone { fields["phone"] = .string(phone) }
            if let email = contact.email { fields["email"] = .string(email) }
            object["contact"] = .object(fields)
        }
        if let consent {
            object["consent"] = .object(consent.marketing.map { ["marketing": .bool($0)] } ?? [:])
        }
        return .object(object)
    }

    /// The same bytes as `JSONWriter.data(jsonValue)` (keys in sorted order), written straight from the fields:
    /// lead-ingest encodes every event it accepts, and building the dictionary first cost about as much as writing it.
    package func encoded() -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(320)
        bytes.append(UInt8(ascii: "{"))
        writeFields(into: &bytes, contact: true)
        bytes.append(UInt8(ascii: "}"))
        return Data(bytes)
    }

    /// The event's fields in `encoded()`'s order, into an object whose `{` is the first byte of `bytes`; without
    /// `consent` and `contact` when `contact` is false (the scorer's batch element carries the contact normalized).
    package func writeFields(into bytes: inout [UInt8], contact includeContact: Bool) {
        if includeContact, let consent {
            JSONWriter.writeKey("consent", into: &bytes)
            if let marketing = consent.marketing {
                bytes.append(contentsOf: #"{"marketing":"#.utf8)
                bytes.append(contentsOf: (marketing ? "true}" : "false}").utf8)
            } else {
                bytes.append(contentsOf: "{}".utf8)
            }
        }
        if includeContact, let contact {
            JSONWriter.writeKey("contact", into: &bytes)
            bytes.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in [("email", contact.email), ("name", contact.name), ("phone", contact.phone)] {
                guard let value else { continue }
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                JSONWriter.writeString(key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                JSONWriter.writeString(value, into: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
        JSONWriter.writeKey("data", into: &bytes)
        JSONWriter.write(.object(data), into: &bytes)
        JSONWriter.writeKey("event_id", into: &bytes)
        JSONWriter.writeString(eventID.lowercasedString, into: &bytes)
        JSONWriter.writeKey("occurred_at", into: &bytes)
        JSONWriter.writeString(JSONCoding.formatTimestamp(occurredAt), into: &bytes)
        JSONWriter.writeKey("received_at", into: &bytes)
        JSONWriter.writeString(JSONCoding.formatTimestamp(receivedAt), into: &bytes)
        JSONWriter.writeKey("session_id", into: &bytes)
        JSONWriter.writeString(sessionID, into: &bytes)
        if let sourcePage {
            JSONWriter.writeKey("source_page", into: &bytes)
            JSONWriter.writeString(sourcePage, into: &bytes)
        }
        JSONWriter.writeKey("type", into: &bytes)
        JSONWriter.writeString(type.rawValue, into: &bytes)
        if let userID {
            JSONWriter.writeKey("user_id", into: &bytes)
            bytes.append(contentsOf: String(userID).utf8)
        }
    }

    /// Reads an event written by `encoded()` (or any producer following the contract).
    package static func decode(_ data: Data) throws -> InteractionEvent {
        let value: JSONValue
        do {
            value = try JSONParser.parse(data, maxDepth: 128)
        } catch {
            throw ValidationError(code: "malformed_json", error.description, field: nil)
        }
        return try InteractionEvent(json: value)
    }

    package init(json value: JSONValue) throws(ValidationError) {
        guard case .object(let object) = value else {
            throw ValidationError(code: "invalid_event", "an event must be a JSON object", field: nil)
        }
        guard let eventText = object["event_id"]?.stringValue, let eventID = UUID(parsing: eventText) else {
            throw .invalid("event_id", "event_id must be a UUID")
        }
        guard let sessionID = object["session_id"]?.stringValue, !sessionID.isEmpty else { throw .missing("session_id") }
        guard let typeText = object["type"]?.stringValue, let type = InteractionType(rawValue: typeText) else {
            throw .invalid("type", "unknown type")
        }
        guard let occurredText = object["occurred_at"]?.stringValue, let occurredAt = JSONCoding.parseTimestamp(occurredText) else {
            throw .invalid("occurred_at", "occurred_at must be an RFC 3339 timestamp")
        }
        let receivedAt = object["received_at"]?.stringValue.flatMap(JSONCoding.parseTimestamp) ?? occurredAt
        var contact: Contact?
        if case .object(let fields)? = object["contact"] {
            contact = Contact(name: fields["name"]?.stringValue, phone: fields["phone"]?.stringValue, email: fields["email"]?.stringValue)
        }
        var consent: Consent?
        if case .object(let fields)? = object["consent"] {
            consent = Consent(marketing: fields["marketing"]?.boolValue)
        }
        self.init(
            eventID: eventID,
            sessionID: sessionID,
            userID: object["user_id"]?.int64Value,
            type: type,
            sourcePage: object["source_page"]?.stringValue,
            occurredAt: occurredAt,
            receivedAt: receivedAt,
            contact: contact,
            consent: consent,
            data: object["data"]?.objectValue ?? [:]
        )
    }
}

import Foundation
import LeadCore
import Testing

@Suite struct InteractionValidatorTests {
    let validator = InteractionValidator()
    let now = JSONCoding.parseTimestamp("2026-11-26T10:00:00Z")!

    func validate(_ json: String) throws -> InteractionEvent {
        let value = try JSONBody.decode(Array(json.utf8))
        return try validator.validate(value, receivedAt: now)
    }

    func field(of json: String) -> String? {
        do {
            _ = try validate(json)
            return "accepted"
        } catch let error as ValidationError {
            return error.field ?? "event"
        } catch {
            return "json:\(error)"
        }
    }

    @Test func contractExampleIsAccepted() throws {
        let event = try validate(
            """
            {"event_id": "2b0c6c1e-0d1b-4a8e-9d51-3f0e3c1f8a10", "session_id": "s-81f2", "user_id": 42,
             "type": "face_analysis", "source_page": "/face-analysis", "occurred_at": "2026-11-26T09:30:00Z",
             "contact": {"name": "Asha Rao", "phone": "+91 98765 43210", "email": "asha@example.com"},
             "consent": {"marketing": true},
             "data": {"recommendations": [{"procedure": "Rhinoplasty"}], "urgency": "immediate"}}
            """
        )
        #expect(event.eventID == UUID(uuidString: "2b0c6c1e-0d1b-4a8e-9d51-3f0e3c1f8a10"))
        #expect(event.sessionID == "s-81f2")
        #expect(event.userID == 42)
        #expect(event.type == .faceAnalysis)
        #expect(event.contact?.email == "asha@example.com")
        #expect(event.consent?.marketing == true)
        #expect(event.occurredAt == JSONCoding.parseTimestamp("2026-11-26T09:30:00Z"))
        #expect(event.receivedAt == now)
    }

    @Test func minimalEventGetsIdAndTimes() throws {
        let event = try validate(#"{"session_id": "s", "type": "page_view"}"#)
        #expect(event.occurredAt == now)
        #expect(event.data.isEmpty)
        #expect(event.contact == nil)
    }

    @Test(arguments: [
        (#"{"type": "page_view"}"#, "session_id"),
        (#"{"session_id": "", "type": "page_view"}"#, "session_id"),
        (#"{"session_id": 12, "type": "page_view"}"#, "session_id"),
        ("{\"session_id\": \"\(String(repeating: "x", count: 256))\", \"type\": \"page_view\"}", "session_id"),
        (#"{"session_id": "s"}"#, "type"),
        (#"{"session_id": "s", "type": "purchase"}"#, "type"),
        (#"{"session_id": "s", "type": "page_view", "event_id": "nope"}"#, "event_id"),
        // Foundation's UUID(uuidString:) read these as other ids (f61b2c3d-..., a1b2c30d-...): not UUIDs.
        (#"{"session_id": "s", "type": "page_view", "event_id": "-a1b2c3d-4e5f-4a6b-8c7d-9e0fa1b2c3d4"}"#, "event_id"),
        (#"{"session_id": "s", "type": "page_view", "event_id": " a1b2c3d-4e5f-4a6b-8c7d-9e0fa1b2c3d4"}"#, "event_id"),
        (#"{"session_id": "s", "type": "page_view", "event_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0fa1b2c3dg"}"#, "event_id"),
        (#"{"session_id": "s", "type": "page_view", "user_id": "42"}"#, "user_id"),
        (#"{"session_id": "s", "type": "page_view", "user_id": -1}"#, "user_id"),
        (#"{"session_id": "s", "type": "page_view", "user_id": 1.5}"#, "user_id"),
        ("{\"session_id\": \"s\", \"type\": \"page_view\", \"source_page\": \"\(String(repeating: "p", count: 101))\"}", "source_page"),
        (#"{"session_id": "s", "type": "page_view", "occurred_at": "yesterday"}"#, "occurred_at"),
        (#"{"session_id": "s", "type": "page_view", "occurred_at": "2099-01-01T00:00:00Z"}"#, "occurred_at"),
        (#"{"session_id": "s", "type": "page_view", "contact": "asha"}"#, "contact"),
        (#"{"session_id": "s", "type": "page_view", "contact": {"email": "asha@"}}"#, "contact.email"),
        (#"{"session_id": "s", "type": "page_view", "contact": {"email": "a b@example.com"}}"#, "contact.email"),
        (#"{"session_id": "s", "type": "page_view", "contact": {"phone": "12345"}}"#, "contact.phone"),
        (#"{"session_id": "s", "type": "page_view", "contact": {"phone": "1234567890123456"}}"#, "contact.phone"),
        (#"{"session_id": "s", "type": "page_view", "contact": {"phone": "+91 98x65 43210"}}"#, "contact.phone"),
        (#"{"session_id": "s", "type": "page_view", "consent": {"marketing": "yes"}}"#, "consent.marketing"),
        (#"{"session_id": "s", "type": "page_view", "data": [1, 2]}"#, "data"),
        (#"["session_id"]"#, "event"),
    ])
    func invalidFieldIsNamed(json: String, expectedField: String) {
        #expect(field(of: json) == expectedField)
    }

    @Test(arguments: ["+91 98765 43210", "(020) 7946-0958", "98765.43210", "+1 [415] 555 0100", "5550100"])
    func phoneFormatsAreAccepted(phone: String) {
        #expect(field(of: #"{"session_id": "s", "type": "page_view", "contact": {"phone": "\#(phone)"}}"#) == "accepted")
    }

    @Test func dataLimitIs32KiB() {
        let small = String(repeating: "a", count: 32 * 1024 - 100)
        let large = String(repeating: "a", count: 32 * 1024)
        #expect(field(of: #"{"session_id": "s", "type": "page_view", "data": {"x": "\#(small)"}}"#) == "accepted")
        #expect(field(of: #"{"session_id": "s", "type": "page_view", "data": {"x": "\#(large)"}}"#) == "data")
    }

    /// PostgreSQL cannot store U+0000: an event carrying one anywhere it is kept is a 422, not a dead letter.
    @Test func nulCharactersAreRefusedWhereverTheyWouldBeStored() {
        #expect(field(of: #"{"session_id": "s\u0000", "type": "page_view"}"#) == "session_id")
        #expect(field(of: #"{"session_id": "s", "type": "page_view", "data": {"a": ["x\u0000"]}}"#) == "data")
        #expect(field(of: #"{"session_id": "s", "type": "page_view", "data": {"k\u0000": 1}}"#) == "data")
        #expect(field(of: #"{"session_id": "s", "type": "page_view", "contact": {"name": "A\u0000"}}"#) == "contact")
        #expect(field(of: #"{"session_id": "s", "type": "page_view", "ignored": "\u0000"}"#) == "accepted")
    }

    @Test func blankContactFieldsAreAbsent() throws {
        let event = try validate(#"{"session_id": "s", "type": "page_view", "contact": {"email": " ", "phone": ""}}"#)
        #expect(event.contact == nil)
    }

    @Test func promptDismissedIsAType() throws {
        #expect(try validate(#"{"session_id": "s", "type": "prompt_dismissed"}"#).type == .promptDismissed)
    }

    @Test func deepNestingIsRefusedBeforeDecoding() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONBody.Failure.tooDeep) { try JSONBody.decode(Array(deep.utf8)) }
    }

    @Test func malformedJSONIsReported() {
        #expect(throws: JSONBody.Failure.self) { try JSONBody.decode(Array(#"{"session_id": "#.utf8)) }
        #expect(throws: JSONBody.Failure.self) { try JSONBody.decode([0xFF, 0xFE, 0x7B]) }
    }

    @Test func eventRoundTripsThroughTheWireFormat() throws {
        let event = try validate(
            #"{"session_id": "s", "type": "cost_calculator", "occurred_at": "2026-11-26T09:30:00.250+05:30", "data": {"get_quote": true, "n": 3, "f": 1.5}}"#
        )
        let decoded = try InteractionEvent.decode(event.encoded())
        #expect(decoded == event)
        let text = String(decoding: event.encoded(), as: UTF8.self)
        #expect(text.contains(event.eventID.uuidString.lowercased()))
    }

    /// `encoded()` writes the fields directly; its bytes must stay those of the generic writer (sorted keys),
    /// with every optional field present or absent.
    @Test(arguments: [
        #"{"session_id": "s", "type": "page_view"}"#,
        #"{"session_id": "s\"q", "type": "search", "user_id": 42, "source_page": "/a\nb", "data": {"q": "é", "z": [1, null]}}"#,
        #"{"session_id": "s", "type": "consultation", "contact": {"name": "Ana", "email": "ana@example.com", "phone": "+44 7700 900123"}, "consent": {"marketing": true}}"#,
        #"{"session_id": "s", "type": "consultation", "contact": {"phone": "+44 7700 900123"}, "consent": {}}"#,
        #"{"session_id": "s", "type": "consultation", "contact": {"email": "ana@example.com"}, "consent": {"marketing": false}}"#,
    ])
    func encodedBytesAreTheGenericWritersBytes(json: String) throws {
        let event = try validate(json)
        #expect(event.encoded() == JSONWriter.data(event.jsonValue))
        #expect(try InteractionEvent.decode(event.encoded()) == event)
    }
}

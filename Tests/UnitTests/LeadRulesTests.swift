import Foundation
import LeadCore
import Testing

@Suite struct LeadRulesTests {
    func event(_ type: InteractionType, email: String? = "asha@example.com", phone: String? = nil, data: [String: JSONValue] = [:]) -> InteractionEvent {
        InteractionEvent(
            sessionID: "s",
            type: type,
            contact: (email == nil && phone == nil) ? nil : .init(name: "Asha", phone: phone, email: email),
            data: data
        )
    }

    @Test(arguments: [
        (InteractionType.aiRecommendation, "AI Recommendation"), (.faceAnalysis, "Face Analysis"),
        (.appointmentBooking, "Appointment Booking"), (.packageInquiry, "Package Inquiry"), (.consultation, "Consultation"),
    ])
    func qualifyingTypesMakeLeads(type: InteractionType, source: String) {
        let candidate = LeadRules.candidate(for: event(type))
        #expect(candidate.canCreateLead)
        #expect(candidate.source == source)
    }

    @Test(arguments: [InteractionType.search, .pageView, .registration, .communityEngagement, .promptDismissed])
    func otherTypesDoNot(type: InteractionType) {
        #expect(!LeadRules.candidate(for: event(type)).canCreateLead)
    }

    @Test func costCalculatorOnlyWithQuote() {
        #expect(!LeadRules.candidate(for: event(.costCalculator)).canCreateLead)
        let quoted = LeadRules.candidate(
            for: event(.costCalculator, data: ["get_quote": .bool(true), "procedure": .string("Botox"), "budget_range": .string("high")])
        )
        #expect(quoted.canCreateLead)
        #expect(quoted.source == "Cost Calculator")
        #expect(quoted.message == "Requested quote for Botox - Budget: high")
    }

    @Test func noContactNoLead() {
        #expect(!LeadRules.candidate(for: event(.faceAnalysis, email: nil)).canCreateLead)
    }

    @Test func faceAnalysisMessageCountsRecommendations() {
        let data: [String: JSONValue] = ["recommendations": .array([.object(["procedure": .string("Botox")]), .object(["procedure": .string("Peel")])])]
        let candidate = LeadRules.candidate(for: event(.faceAnalysis, data: data))
        #expect(candidate.message == "Face analysis completed with 2 recommendations")
        #expect(candidate.procedureName == "Botox")
    }

    @Test func procedureNameOrder() {
        let all: [String: JSONValue] = [
            "selected_procedure": .string("A"), "procedure": .string("B"),
            "recommendations": .array([.object(["procedure": .string("C")])]), "procedures": .array([.string("D")]),
        ]
        #expect(ProcedureExtractor.primaryProcedure(in: all) == "A")
        var rest = all
        rest["selected_procedure"] = nil
        #expect(ProcedureExtractor.primaryProcedure(in: rest) == "B")
        rest["procedure"] = nil
        #expect(ProcedureExtractor.primaryProcedure(in: rest) == "C")
        rest["recommendations"] = nil
        #expect(ProcedureExtractor.primaryProcedure(in: rest) == "D")
    }

    @Test(arguments: ["test@test.com", " TEST@test.com ", "null", "none"])
    func placeholderEmailsAreIgnored(email: String) {
        #expect(ContactNormalizer.email(email) == nil)
        #expect(!LeadRules.candidate(for: event(.faceAnalysis, email: email)).canCreateLead)
    }

    @Test(arguments: ["0000000000", "1111111111", "+91 00000 00000", "1234567890", "99999 99999"])
    func placeholderPhonesAreIgnored(phone: String) {
        #expect(ContactNormalizer.phone(phone) == nil)
    }

    @Test func normalForms() {
        #expect(ContactNormalizer.email("  Asha.Rao@Example.COM ") == "asha.rao@example.com")
        #expect(ContactNormalizer.phone("+91 98765-43210") == "+919876543210")
        #expect(ContactNormalizer.phone("(98761) 43210") == "9876143210")
    }
}

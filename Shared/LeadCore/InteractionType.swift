/// The calls to action the web tier reports (CONTRACT section 3).
package enum InteractionType: String, Codable, Sendable, CaseIterable {
    case aiRecommendation = "ai_recommendation"
    case faceAnalysis = "face_analysis"
    case costCalculator = "cost_calculator"
    case appointmentBooking = "appointment_booking"
    case packageInquiry = "package_inquiry"
    case consultation
    case search
    case pageView = "page_view"
    case registration
    case communityEngagement = "community_engagement"
    /// The visitor closed a contact prompt: no new prompt for 24 hours.
    case promptDismissed = "prompt_dismissed"

    /// The lead `source` of an interaction that can create a lead (CONTRACT section 7).
    package var leadSource: String? {
        switch self {
        case .aiRecommendation: "AI Recommendation"
        case .faceAnalysis: "Face Analysis"
        case .costCalculator: "Cost Calculator"
        case .appointmentBooking: "Appointment Booking"
        case .packageInquiry: "Package Inquiry"
        case .consultation: "Consultation"
        default: nil
        }
    }
}

import Foundation
import Testing

/// The dashboard in headless Chromium (Tests/browser/dashboard_test.py, Selenium): sign-in, cookie flags,
/// charts, a live alert arriving over Server-Sent Events, filters, the lead page and an outcome.
@Suite struct DashboardBrowserTests {
    @Test func signInFilterAndWatchALiveAlertInARealBrowser() async throws {
        let stack = try await SharedStack.shared.start()
        let (status, output) = try await PythonScript.run(
            "Tests/browser/dashboard_test.py",
            ["--admin", stack.admin, "--ingest", stack.ingest, "--screenshot", TestEnvironment.testDir + "/dashboard.png"],
            label: "browser"
        )
        #expect(status == 0, "browser test: \(output.suffix(2000))")
    }
}

import InetCore
import XCTest

final class PortPlanTests: XCTestCase {
    func testWellKnownPortsWhenPrivileged() {
        let plan = PortPlan(explicitOffset: nil, canBindPrivilegedPorts: true)
        XCTAssertEqual(plan.port(wellKnown: 7), 7)
        XCTAssertEqual(plan.port(wellKnown: 37), 37)
    }

    func testEverythingMovesBy10000WhenUnprivileged() {
        let plan = PortPlan(explicitOffset: nil, canBindPrivilegedPorts: false)
        XCTAssertEqual(plan.port(wellKnown: 7), 10_007)
        XCTAssertEqual(plan.port(wellKnown: 19), 10_019)
    }

    func testExplicitOffsetAlwaysApplies() {
        XCTAssertEqual(PortPlan(explicitOffset: 20_000, canBindPrivilegedPorts: true).port(wellKnown: 13), 20_013)
        XCTAssertEqual(PortPlan(explicitOffset: 0, canBindPrivilegedPorts: false).port(wellKnown: 13), 13)
    }

    func testConfiguredPortWinsOverOffset() {
        let plan = PortPlan(explicitOffset: 10_000, canBindPrivilegedPorts: false)
        XCTAssertEqual(plan.port(wellKnown: 7, configured: 7007), 7007)
        XCTAssertEqual(plan.port(wellKnown: 7, configured: 0), 0)
    }

    func testRootMayBindPrivilegedPorts() throws {
        try XCTSkipUnless(geteuid() == 0, "only meaningful as root")
        XCTAssertTrue(PortPlan.processCanBindPrivilegedPorts(lowestPort: 7))
    }

    func testClientsAssumeTheServersRule() {
        XCTAssertEqual(PortPlan.defaultPort(wellKnown: 53, explicitOffset: 20_000), 20_053)
        XCTAssertEqual(PortPlan.defaultPort(wellKnown: 13, explicitOffset: 0), 13)
        let expected = PortPlan.processCanBindPrivilegedPorts(lowestPort: 7) ? 7 : 10_007
        XCTAssertEqual(PortPlan.defaultPort(wellKnown: 7, explicitOffset: nil), expected)
    }
}

import InetSimple
import XCTest

final class TargetTests: XCTestCase {
    func testTargetForms() throws {
        XCTAssertEqual(try Target.parse("127.0.0.1", defaultPort: 7), Target(host: "127.0.0.1", port: 7))
        XCTAssertEqual(try Target.parse("localhost:10007", defaultPort: 7), Target(host: "localhost", port: 10_007))
        XCTAssertEqual(try Target.parse("[::1]:10013", defaultPort: 13), Target(host: "::1", port: 10_013))
        XCTAssertEqual(try Target.parse("[::1]", defaultPort: 13), Target(host: "::1", port: 13))
        XCTAssertEqual(try Target.parse("::1", defaultPort: 13), Target(host: "::1", port: 13))
        XCTAssertEqual(Target(host: "::1", port: 7).description, "[::1]:7")
    }

    func testBadTargetsAreRejected() {
        XCTAssertThrowsError(try Target.parse("host:0", defaultPort: 7))
        XCTAssertThrowsError(try Target.parse("host:99999", defaultPort: 7))
        XCTAssertThrowsError(try Target.parse("host:abc", defaultPort: 7))
        XCTAssertThrowsError(try Target.parse(":7", defaultPort: 7))
        XCTAssertThrowsError(try Target.parse("[::1", defaultPort: 7))
        XCTAssertThrowsError(try Target.parse("", defaultPort: 7))
    }
}

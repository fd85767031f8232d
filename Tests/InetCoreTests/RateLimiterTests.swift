@testable import InetCore
import NIOCore
import XCTest

final class RateLimiterTests: XCTestCase {
    private let source = SourceKey(try! SocketAddress(ipAddress: "192.0.2.1", port: 1234))!

    func testBurstThenDenyThenRefill() {
        var limiter = SourceRateLimiter(rate: 10, burst: 5, maximumSources: 100)
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        for _ in 0..<5 { XCTAssertEqual(limiter.admit(source, now: start), .allow) }
        XCTAssertEqual(limiter.admit(source, now: start), .startLimiting)
        XCTAssertEqual(limiter.admit(source, now: start), .deny)
        // 10/s: after 0.35 s three tokens are back.
        let later = start + .milliseconds(350)
        XCTAssertEqual(limiter.admit(source, now: later), .allow)
        XCTAssertEqual(limiter.admit(source, now: later), .allow)
        XCTAssertEqual(limiter.admit(source, now: later), .allow)
        XCTAssertEqual(limiter.admit(source, now: later), .startLimiting)
    }

    func testZeroRateMeansUnlimited() {
        var limiter = SourceRateLimiter(rate: 0, burst: 1, maximumSources: 100)
        for _ in 0..<1000 { XCTAssertEqual(limiter.admit(source, now: .now()), .allow) }
        XCTAssertTrue(limiter.buckets.isEmpty)
    }

    func testTableStaysBounded() throws {
        var limiter = SourceRateLimiter(rate: 1, burst: 2, maximumSources: 64)
        let now = NIODeadline.now()
        for index in 0..<10_000 {
            let address = try SocketAddress(ipAddress: "10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)", port: 53)
            _ = limiter.admit(SourceKey(address)!, now: now)
            XCTAssertLessThanOrEqual(limiter.buckets.count, 64)
        }
    }

    func testSourcesAreSeparateAndPortIsIgnored() throws {
        var limiter = SourceRateLimiter(rate: 1, burst: 1, maximumSources: 100)
        let now = NIODeadline.now()
        let a1 = SourceKey(try SocketAddress(ipAddress: "192.0.2.1", port: 1))!
        let a2 = SourceKey(try SocketAddress(ipAddress: "192.0.2.1", port: 2))!
        let b = SourceKey(try SocketAddress(ipAddress: "192.0.2.2", port: 1))!
        XCTAssertEqual(a1, a2)
        XCTAssertEqual(limiter.admit(a1, now: now), .allow)
        XCTAssertEqual(limiter.admit(a2, now: now), .startLimiting)
        XCTAssertEqual(limiter.admit(b, now: now), .allow)
    }

    func testIPv4MappedIPv6CountsAsIPv4() throws {
        let v4 = SourceKey(try SocketAddress(ipAddress: "192.0.2.7", port: 1))!
        let mapped = SourceKey(try SocketAddress(ipAddress: "::ffff:192.0.2.7", port: 1))!
        let v6 = SourceKey(try SocketAddress(ipAddress: "2001:db8::7", port: 1))!
        XCTAssertEqual(v4, mapped)
        XCTAssertNotEqual(v4, v6)
    }
}

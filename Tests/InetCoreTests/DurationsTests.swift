import Foundation
import NIOCore
import XCTest
@testable import InetCore

/// Durations from config files and peers never trap when made into time amounts.
final class DurationsTests: XCTestCase {
    func testSecondsClampInsteadOfTrapping() {
        XCTAssertEqual(TimeAmount.seconds(clamping: 1.5), .milliseconds(1500))
        XCTAssertEqual(TimeAmount.seconds(clamping: 0), .zero)
        XCTAssertEqual(TimeAmount.seconds(clamping: -3), .zero)
        XCTAssertEqual(TimeAmount.seconds(clamping: .nan), .zero)
        // Int64(x * 1e9) traps past ~292 years; these saturate.
        XCTAssertEqual(TimeAmount.seconds(clamping: 1e300), .nanoseconds(Int64.max / 2))
        XCTAssertEqual(TimeAmount.seconds(clamping: .infinity), .nanoseconds(Int64.max / 2))
        XCTAssertEqual(TimeAmount.seconds(clamping: 86_400 * 7), .hours(24 * 7))
    }

    func testMaxPendingOutputIsALimitWithAKey() throws {
        XCTAssertEqual(Limits().maxPendingOutput, 256 * 1024)
        XCTAssertTrue(Limits.keys.contains("max_pending_output"))
    }
}

/// The log line's timestamp keeps the date and time of day per thread for a second: across
/// second boundaries it still reads as InetLogHandler's clock does.
final class LogTimestampTests: XCTestCase {
    func testTheKeptSecondFollowsTheClock() {
        let end = Date().addingTimeInterval(1.3)
        var seconds = Set<String>()
        while Date() < end {
            let before = InetLogHandler.timestamp()
            var bytes: [UInt8] = []
            LogLine.appendTimestamp(to: &bytes)
            let after = InetLogHandler.timestamp()
            let stamp = String(decoding: bytes, as: UTF8.self)
            XCTAssertEqual(bytes.count, 24)
            XCTAssertTrue(before <= stamp && stamp <= after, "\(before) <= \(stamp) <= \(after)")
            seconds.insert(String(stamp.prefix(19)))
            usleep(2000)
        }
        XCTAssertGreaterThanOrEqual(seconds.count, 2, "a second boundary was crossed")
    }
}

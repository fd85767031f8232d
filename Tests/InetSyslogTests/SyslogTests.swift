import Foundation
import InetCore
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import XCTest
@testable import InetSyslog

final class SyslogMessageTests: XCTestCase {
    func parse(_ text: String) -> SyslogMessage { SyslogMessage.parse(Array(text.utf8)[...]) }

    func testRFC5424ExampleWithStructuredData() {
        // RFC 5424 §6.5, example 3 (with a BOM before the message).
        let bytes = Array(#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] "#.utf8)
            + [0xEF, 0xBB, 0xBF] + Array("An application event log entry...".utf8)
        let m = SyslogMessage.parse(bytes[...])
        XCTAssertEqual(m.format, .rfc5424)
        XCTAssertEqual(m.priority, 165)
        XCTAssertEqual(m.facility, 20)
        XCTAssertEqual(m.severity, 5)
        XCTAssertEqual(m.version, 1)
        XCTAssertEqual(m.timestamp, "2003-10-11T22:14:15.003Z")
        XCTAssertEqual(m.hostname, "mymachine.example.com")
        XCTAssertEqual(m.app, "evntslog")
        XCTAssertNil(m.procid)
        XCTAssertEqual(m.msgid, "ID47")
        XCTAssertEqual(m.structuredData.map(\.id), ["exampleSDID@32473", "examplePriority@32473"])
        XCTAssertEqual(m.structuredData[0].parameters.map(\.value), ["3", "Application", "1011"])
        XCTAssertEqual(String(decoding: m.message, as: UTF8.self), "An application event log entry...")
        XCTAssertNil(m.malformed)
    }

    func testRFC5424NilValuesEscapesAndNoMessage() {
        let m = parse(#"<34>1 - - - - - [a@1 q="say \"hi\" \\ \] x\y"]"#)
        XCTAssertNil(m.timestamp)
        XCTAssertNil(m.hostname)
        XCTAssertEqual(m.structuredData.first?.parameters.first?.value, #"say "hi" \ ] x\y"#)
        XCTAssertTrue(m.message.isEmpty)
        XCTAssertNil(m.malformed)
        let offset = parse("<13>1 2026-12-03T17:00:00.123456+01:00 h a 42 - - text")
        XCTAssertEqual(offset.timestamp, "2026-12-03T17:00:00.123456+01:00")
        XCTAssertEqual(offset.procid, "42")
        XCTAssertEqual(String(decoding: offset.message, as: UTF8.self), "text")
    }

    func testMalformedRFC5424KeepsTheRestAsMessage() {
        let m = parse(#"<13>1 yesterday host app - - - hello"#)
        XCTAssertEqual(m.malformed, "TIMESTAMP is not RFC 3339")
        XCTAssertEqual(String(decoding: m.message, as: UTF8.self), "yesterday host app - - - hello")
        let sd = parse(#"<13>1 - h a - - [x@1 k="unclosed] msg"#)
        XCTAssertEqual(sd.malformed, "PARAM-VALUE of k is not closed")
        XCTAssertEqual(String(decoding: sd.message, as: UTF8.self), #"[x@1 k="unclosed] msg"#)
        let long = parse("<13>1 - h " + String(repeating: "a", count: 49) + " - - - m")
        XCTAssertNotNil(long.malformed)
    }

    func testRFC3164() {
        let m = parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
        XCTAssertEqual(m.format, .rfc3164)
        XCTAssertEqual(m.facility, 4)
        XCTAssertEqual(m.severity, 2)
        XCTAssertEqual(m.timestamp, "Oct 11 22:14:15")
        XCTAssertEqual(m.hostname, "mymachine")
        XCTAssertEqual(m.app, "su")
        XCTAssertEqual(String(decoding: m.message, as: UTF8.self), "'su root' failed for lonvick on /dev/pts/8")
        let pid = parse("<13>Dec  3 09:05:01 lab CRON[1234]: (root) CMD (true)\n")
        XCTAssertEqual(pid.timestamp, "Dec  3 09:05:01")
        XCTAssertEqual(pid.app, "CRON")
        XCTAssertEqual(pid.procid, "1234")
        XCTAssertEqual(String(decoding: pid.message, as: UTF8.self), "(root) CMD (true)")
        // No host name after the time (what programs write to /dev/log).
        let local = parse("<13>Dec  3 09:05:01 app[7]: hi")
        XCTAssertNil(local.hostname)
        XCTAssertEqual(local.app, "app")
        // Python's SysLogHandler: no time, no host, a NUL at the end.
        let python = parse("<14>myapp: started\u{0}")
        XCTAssertNil(python.timestamp)
        XCTAssertEqual(python.app, "myapp")
        XCTAssertEqual(String(decoding: python.message, as: UTF8.self), "started")
        // rsyslog's forwarding format: an RFC 3339 time in a 3164 header.
        let rsyslog = parse("<30>2026-12-03T17:00:00.1+00:00 lab demo[9]: up")
        XCTAssertEqual(rsyslog.timestamp, "2026-12-03T17:00:00.1+00:00")
        XCTAssertEqual(rsyslog.hostname, "lab")
        XCTAssertEqual(rsyslog.app, "demo")
        // loggen's: a time without a zone.
        let loggen = parse("<38>2026-12-03T17:20:37 localhost prg00000[1234]: seq: 1")
        XCTAssertEqual(loggen.timestamp, "2026-12-03T17:20:37")
        XCTAssertEqual(loggen.hostname, "localhost")
        XCTAssertEqual(loggen.app, "prg00000")
        XCTAssertEqual(loggen.procid, "1234")
        XCTAssertFalse(SyslogMessage.isRFC3339("2026-12-03T17:20:37"), "RFC 5424 needs the zone")
    }

    func testWithoutPriorityItIsUserNotice() {
        for text in ["just text", "<192>too big", "<>x", "<1234>x", "<12"] {
            let m = parse(text)
            XCTAssertFalse(m.priorityGiven, text)
            XCTAssertEqual(m.priority, 13)
            XCTAssertEqual(String(decoding: m.message, as: UTF8.self), text)
        }
    }

    func testNames() {
        XCTAssertEqual(SyslogMessage.facility(named: "local7"), 23)
        XCTAssertEqual(SyslogMessage.facility(named: "security"), 4)
        XCTAssertEqual(SyslogMessage.severity(named: "warn"), 4)
        XCTAssertEqual(SyslogMessage.severity(named: "error"), 3)
        XCTAssertNil(SyslogMessage.severity(named: "loud"))
    }
}

final class SyslogFramerTests: XCTestCase {
    func frames(_ chunks: [String], maximum: Int = 100) -> [SyslogFramer.Frame] {
        var framer = SyslogFramer(maximumMessage: maximum)
        var out: [SyslogFramer.Frame] = []
        for chunk in chunks { framer.feed(Array(chunk.utf8)) { out.append($0) } }
        if let last = framer.finish() { out.append(last) }
        return out
    }

    func text(_ frame: SyslogFramer.Frame) -> String { String(decoding: frame.bytes, as: UTF8.self) }

    func testOctetCountingAndLFFramingToldApartPerMessage() {
        let got = frames(["11 <13>1 - a b", "5 <1>x\r\n<13>hello\n", "\n5 <1>y\n"])
        XCTAssertEqual(got.map(text), ["<13>1 - a b", "<1>x\r", "<13>hello", "<1>y\n"])
        XCTAssertEqual(got.map(\.octetCounted), [true, true, false, true])
        XCTAssertTrue(got.allSatisfy { !$0.truncated && !$0.incomplete })
    }

    func testEveryByteSplitGivesTheSameFrames() {
        let stream = "12 <13>1 - - x\n<13>a b c\r\n<14>py\u{0}3 abc"
        let whole = frames([stream])
        let bytewise = frames(stream.map { String($0) })
        XCTAssertEqual(whole, bytewise)
        XCTAssertEqual(whole.map(text), ["<13>1 - - x\n", "<13>a b c", "<14>py", "abc"])
    }

    func testLongMessagesAreTruncatedAndFlagged() {
        let got = frames(["200 " + String(repeating: "a", count: 200), "<13>" + String(repeating: "b", count: 150) + "\n<13>ok\n"], maximum: 100)
        XCTAssertEqual(got.count, 3)
        XCTAssertEqual(got[0].bytes.count, 100)
        XCTAssertEqual(got[0].length, 200)
        XCTAssertTrue(got[0].truncated)
        XCTAssertEqual(got[1].bytes.count, 100)
        XCTAssertEqual(got[1].length, 154)
        XCTAssertEqual(text(got[2]), "<13>ok")
    }

    func testHugeCountsAndEndOfStream() {
        var framer = SyslogFramer(maximumMessage: 64)
        var out: [SyslogFramer.Frame] = []
        framer.feed(Array("9999999999 abc".utf8)) { out.append($0) }
        XCTAssertTrue(out.isEmpty)
        XCTAssertLessThanOrEqual(framer.buffered, 64)
        let last = framer.finish()
        XCTAssertEqual(last?.incomplete, true)
        XCTAssertEqual(last?.truncated, false)
        XCTAssertEqual(last?.length, 9_999_999_999)
        XCTAssertEqual(last?.bytes, Array("abc".utf8))
        // More digits than any count: read as the start of a line.
        XCTAssertEqual(frames(["123456789012345 x\n"]).map(text), ["123456789012345 x"])
        XCTAssertEqual(frames(["12x\n"]).map(text), ["12x"])
        XCTAssertEqual(frames(["<13>no newline"]).map(text), ["<13>no newline"])
    }
}

final class SyslogRecordTests: XCTestCase {
    func testJSONLineIsValidAndComplete() throws {
        let m = SyslogMessage.parse(Array(#"<165>1 2003-10-11T22:14:15.003Z host app 7 ID [a@1 k="v" k="w"][b@2] tab\#t"quote" \ "#.utf8 + [0xFF, 0x01])[...])
        var line: [UInt8] = []
        SyslogRecord.encode(m, length: 5000, truncated: true, receipt: .init(seconds: 1_764_781_200, nanoseconds: 45_000_000, peer: "[::1]:514", transport: "tcp"), into: &line)
        XCTAssertEqual(line.last, 0x0A)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        XCTAssertEqual(object["received"] as? String, "2025-12-03T17:00:00.045Z")
        XCTAssertEqual(object["peer"] as? String, "[::1]:514")
        XCTAssertEqual(object["facility"] as? String, "local4")
        XCTAssertEqual(object["severity"] as? String, "notice")
        XCTAssertEqual(object["pri"] as? Int, 165)
        XCTAssertEqual(object["procid"] as? String, "7")
        let sd = try XCTUnwrap(object["sd"] as? [String: [String: Any]])
        XCTAssertEqual(sd["a@1"]?["k"] as? [String], ["v", "w"])
        XCTAssertEqual(sd["b@2"]?.count, 0)
        XCTAssertEqual(object["message"] as? String, "tab\t\"quote\" \\ \u{FFFD}\u{1}")
        XCTAssertEqual(object["truncated"] as? Bool, true)
        XCTAssertEqual(object["length"] as? Int, 5000)
    }

    func testCivilDates() {
        XCTAssertEqual(SyslogRecord.date(seconds: 0), "1970-01-01")
        XCTAssertEqual(SyslogRecord.date(seconds: 951_782_400), "2000-02-29")
        XCTAssertEqual(SyslogRecord.date(seconds: 4_107_542_399), "2100-02-28")
        XCTAssertEqual(SyslogRecord.date(seconds: -1), "1969-12-31")
    }
}

final class SyslogStoreTests: XCTestCase {
    func folder() -> String {
        let path = NSTemporaryDirectory() + "inetkit-syslog-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A 100-byte message `<13>1 - h app - - - n=NNNN aaaa…`.
    func message(_ n: Int) -> SyslogStore.Message {
        var text = Array("<13>1 - h app - - - n=\(String(format: "%04d", n)) ".utf8)
        text += [UInt8](repeating: 0x61, count: 100 - text.count)
        return SyslogStore.Message(bytes: text, length: text.count, peer: .text("127.0.0.1:9"), tcp: true)
    }

    func testLinesLandInTheDaysFileAndRotateUnderTheCap() async throws {
        var settings = SyslogStore.Settings(directory: folder())
        settings.rotateBytes = 20_000
        settings.maximumTotalBytes = 70_000
        let store = SyslogStore(settings)
        for n in 0..<1000 {
            XCTAssertNotEqual(store.append([message(n)]), .dropped)
            if n % 50 == 0 { await store.flush() }
        }
        await store.flush()
        let names = try FileManager.default.contentsOfDirectory(atPath: settings.directory).filter { $0.hasSuffix(".jsonl") }.sorted()
        let today = SyslogRecord.date(seconds: Int(Date().timeIntervalSince1970))
        XCTAssertTrue(names.contains("syslog-\(today).jsonl"), "\(names)")
        XCTAssertTrue(names.contains { $0.hasPrefix("syslog-\(today).") && $0 != "syslog-\(today).jsonl" }, "rotated: \(names)")
        var total = 0
        var numbers: [Int] = []
        for name in names {
            let data = try Data(contentsOf: URL(fileURLWithPath: settings.directory + "/" + name))
            total += data.count
            for text in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                let text = try XCTUnwrap(object["message"] as? String)
                numbers.append(Int(text.split(separator: " ")[0].dropFirst(2))!)
            }
        }
        XCTAssertLessThanOrEqual(total, settings.maximumTotalBytes)
        // The newest lines are kept, in order, none twice; the oldest files went.
        XCTAssertEqual(numbers.sorted(), numbers.sorted().reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } })
        XCTAssertEqual(numbers.max(), 999)
        XCTAssertGreaterThan(numbers.min()!, 0, "the oldest file was removed")
        XCTAssertEqual(Set(numbers), Set(numbers.min()!...999))
    }

    func testUDPIsDroppedWhenFullAndTCPWaits() async throws {
        var settings = SyslogStore.Settings(directory: folder())
        settings.maximumPendingBytes = 65_536
        let store = SyslogStore(settings, writerHeld: true)
        // The disk "stalls": 100-byte messages (196 bytes queued each) fill 64 KiB after 334.
        var admissions: [SyslogStore.Admission] = []
        for n in 0..<1000 { admissions.append(store.append(message(n))) }
        XCTAssertEqual(admissions.filter { $0 == .stored }.count, 334)
        XCTAssertEqual(admissions.filter { $0 == .dropped }.count, 666)
        XCTAssertEqual(store.droppedMessages, 666)
        XCTAssertEqual(store.append([message(1000)]), .storedButFull, "TCP messages are always taken; the sender is told to wait")
        let called = NIOLockedValueBox(false)
        store.whenDrained { called.withLockedValue { $0 = true } }
        try await Task.sleep(nanoseconds: 100_000_000)
        XCTAssertFalse(called.withLockedValue { $0 }, "not while the queue is full")
        store.releaseWriter()
        await store.flush()
        XCTAssertTrue(called.withLockedValue { $0 }, "once the writer caught up")
        let names = try FileManager.default.contentsOfDirectory(atPath: settings.directory).filter { $0.hasSuffix(".jsonl") }
        let text = try String(contentsOfFile: settings.directory + "/" + names[0], encoding: .utf8)
        XCTAssertEqual(text.split(separator: "\n").count, 335)
    }
}

final class SyslogServiceTests: XCTestCase {
    func service(_ dir: String, maximum: Int = 8192) -> SyslogService {
        SyslogService(maximumMessage: maximum, store: SyslogStore.shared(SyslogStore.Settings(directory: dir)))
    }

    func stored(_ dir: String) throws -> [[String: Any]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".jsonl") }.sorted()
        return try names.flatMap { name in
            try String(contentsOfFile: dir + "/" + name, encoding: .utf8).split(separator: "\n").map {
                try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }
    }

    func testDatagramsAreStoredWithTheSenderAndTruncatedWhenLong() async throws {
        let dir = NSTemporaryDirectory() + "inetkit-syslog-\(UUID().uuidString)"
        let s = service(dir, maximum: 480)
        try s.prepare()
        let source = try SocketAddress(ipAddress: "127.0.0.1", port: 40_000)
        XCTAssertNil(s.reply(toDatagram: ByteBuffer(string: "<13>1 - h app - - - hello"), from: source, allocator: .init()))
        XCTAssertNil(s.reply(toDatagram: ByteBuffer(string: "<13>" + String(repeating: "x", count: 1000)), from: source, allocator: .init()))
        XCTAssertNil(s.reply(toDatagram: ByteBuffer(), from: source, allocator: .init()))
        await s.finish()
        let lines = try stored(dir)
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(lines[0]["peer"] as? String, "127.0.0.1:40000")
        XCTAssertEqual(lines[0]["transport"] as? String, "udp")
        XCTAssertEqual(lines[0]["message"] as? String, "hello")
        XCTAssertEqual(lines[1]["truncated"] as? Bool, true)
        XCTAssertEqual(lines[1]["length"] as? Int, 1004)
        XCTAssertEqual((lines[1]["message"] as? String)?.count, 476)
    }

    func testTCPConnectionStoresEveryFrameAndItsLastOnClose() async throws {
        let dir = NSTemporaryDirectory() + "inetkit-syslog-\(UUID().uuidString)"
        let s = service(dir)
        try s.prepare()
        let channel = EmbeddedChannel()
        try s.configureTCPConnection(channel)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5000)).get()
        try channel.writeInbound(ByteBuffer(string: "10 <13>1 - a\n<14>line one\n<14>unterminated"))
        try channel.writeInbound(ByteBuffer(string: " tail"))
        XCTAssertEqual(s.connections.all.count, 1)
        _ = try? channel.finish()
        await s.finish()
        let lines = try stored(dir)
        XCTAssertEqual(lines.map { $0["message"] as? String }, ["", "line one", "unterminated tail"])
        XCTAssertEqual(lines.map { $0["transport"] as? String }, ["tcp", "tcp", "tcp"])
        XCTAssertTrue(s.connections.all.isEmpty)
    }

    func testDrainClosesAQuietConnection() throws {
        let dir = NSTemporaryDirectory() + "inetkit-syslog-\(UUID().uuidString)"
        let s = service(dir)
        try s.prepare()
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try s.configureTCPConnection(channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5000)).wait()
        s.drainConnections()
        try channel.writeInbound(ByteBuffer(string: "<13>during the drain\n"))
        loop.advanceTime(by: .milliseconds(150))
        XCTAssertTrue(channel.isActive, "a read within the quiet period keeps it open")
        loop.advanceTime(by: .milliseconds(300))
        XCTAssertFalse(channel.isActive)
    }

    func testOptions() throws {
        let yaml = "services:\n  syslog: { max_total_bytes: 1000000, rotate_bytes: 900000 }\n"
        let config = try HostConfig.parse(yaml: yaml, file: "t.yaml", catalog: [SyslogService.descriptor])
        XCTAssertThrowsError(try HostPlan.make(config: config, overrides: HostOverrides(), catalog: [SyslogService.descriptor], canBindPrivilegedPorts: false)) {
            XCTAssertTrue("\($0)".contains("max_total_bytes"), "\($0)")
        }
    }
}

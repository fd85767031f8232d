@testable import InetCore
import Foundation
import Logging
import NIOCore
import XCTest

final class EventRingTests: XCTestCase {
    private func publish(_ ring: EventRing, _ text: String, service: String = "http", kind: String = "test") -> Int {
        Self.publish(ring, text, service: service, kind: kind)
    }

    private static func publish(_ ring: EventRing, _ text: String, service: String = "http", kind: String = "test") -> Int {
        let id = HostEvents.emit(ring: ring, service: service, kind: kind, connection: 0) { $0.string("text", text) }
        return id
    }

    private func object(_ event: StoredEvent) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(event.json)) as? [String: Any])
    }

    func testEventsReadBackInOrderAsJSONWithTheirIds() throws {
        let ring = try XCTUnwrap(EventRing.inProcess(slots: 100, slotBytes: 512))
        XCTAssertEqual(ring.lastID, 0)
        for index in 1...5 { XCTAssertEqual(publish(ring, "event \(index)"), index) }
        var cursor = EventCursor(next: 1)
        let (events, lost) = cursor.poll(ring, limit: 100, now: 0)
        XCTAssertEqual(lost, 0)
        XCTAssertEqual(events.map(\.id), [1, 2, 3, 4, 5])
        let third = try object(events[2])
        XCTAssertEqual(third["id"] as? Int, 3)
        XCTAssertEqual(third["service"] as? String, "http")
        XCTAssertEqual(third["kind"] as? String, "test")
        XCTAssertEqual(third["text"] as? String, "event 3")
        XCTAssertNotNil(third["time"] as? String)
        XCTAssertEqual(cursor.next, 6)
        // Nothing new: nothing returned, nothing lost.
        let again = cursor.poll(ring, limit: 100, now: 0)
        XCTAssertTrue(again.events.isEmpty)
        XCTAssertEqual(again.lost, 0)
    }

    func testAReaderOvertakenByTheRingIsToldHowManyItLost() {
        let ring = EventRing.inProcess(slots: 100, slotBytes: 256)!
        var cursor = EventCursor(next: 1)
        for index in 1...250 { _ = publish(ring, "\(index)") }
        let (events, lost) = cursor.poll(ring, limit: 1000, now: 0)
        XCTAssertEqual(lost, 150)
        XCTAssertEqual(events.first?.id, 151)
        XCTAssertEqual(events.last?.id, 250)
        XCTAssertEqual(events.count, 100)
        XCTAssertEqual(ring.read(10), .gone)
    }

    func testIdsContinueAfterTheJournalsLastAndEarlierOnesAreNotInTheRing() {
        let ring = EventRing.inProcess(slots: 100, slotBytes: 256)!
        ring.seed(lastID: 41)
        XCTAssertEqual(ring.firstID, 42)
        XCTAssertEqual(publish(ring, "first of this run"), 42)
        XCTAssertEqual(publish(ring, "second"), 43)
        var cursor = EventCursor(next: 30)
        let (events, lost) = cursor.poll(ring, limit: 10, now: 0)
        XCTAssertEqual(events.map(\.id), [42, 43])
        XCTAssertEqual(lost, 12)
    }

    func testAnEventEncodedInItsSlotIsPendingUntilDoneAndCutToTheSlot() throws {
        let ring = try XCTUnwrap(EventRing.inProcess(slots: 10, slotBytes: 256))
        let writer = ring.writer
        let id = writer.allocateID()
        writer.publish(id: id, service: "dns", kind: "dns.query", connection: 0, time: 1_700_000_000_000) { body in
            body.string("qname", "a.example.")
            // Being written: no reader sees half an event.
            XCTAssertEqual(ring.read(id), .pending)
            body.int("answers", 2)
        }
        guard case .event(let event) = ring.read(id) else { return XCTFail("event \(id) not readable") }
        let object = try object(event)
        XCTAssertEqual(object["qname"] as? String, "a.example.")
        XCTAssertEqual(object["answers"] as? Int, 2)
        XCTAssertEqual(object["kind"] as? String, "dns.query")
        XCTAssertEqual(object["time"] as? String, "2023-11-14T22:13:20.000Z")
        // A body longer than the slot is cut within it, marked, and the next slot untouched.
        let next = writer.allocateID()
        writer.publish(id: next, service: "dns", kind: "dns.query", connection: 0, time: 0) { body in
            body.string("qname", String(repeating: "x", count: 1000))
            body.int("answers", 1)
        }
        guard case .event(let long) = ring.read(next) else { return XCTFail("event \(next) not readable") }
        XCTAssertLessThanOrEqual(long.body.count, writer.maximumBodyBytes)
        XCTAssertEqual(try self.object(long)["truncated"] as? Bool, true)
        XCTAssertEqual(ring.read(next + 1), .pending)
    }

    func testASlotLeftHalfWrittenIsSkippedAfterASecondNotForever() {
        let ring = EventRing.inProcess(slots: 100, slotBytes: 256)!
        _ = publish(ring, "one")
        // An id taken by a process that died before writing its event.
        _ = ring.allocateID()
        _ = publish(ring, "three")
        var cursor = EventCursor(next: 1)
        var result = cursor.poll(ring, limit: 10, now: 100)
        XCTAssertEqual(result.events.map(\.id), [1])
        result = cursor.poll(ring, limit: 10, now: 100.5)
        XCTAssertEqual(result.events.map(\.id), [])
        result = cursor.poll(ring, limit: 10, now: 101.6)
        XCTAssertEqual(result.events.map(\.id), [3])
        XCTAssertEqual(result.lost, 1)
    }

    func testTheRingInSharedMemoryIsReadByAnotherMappingOfIt() throws {
        let bytes = EventRing.byteCount(slots: 64, slotBytes: 256)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let writer = EventRing(initializing: memory, slots: 64, slotBytes: 256)
        XCTAssertNil(EventRing(attaching: memory, available: 32))
        let reader = try XCTUnwrap(EventRing(attaching: memory, available: bytes))
        XCTAssertEqual(reader.slotCount, 64)
        _ = publish(writer, "across", service: "dns", kind: "dns.query")
        guard case .event(let event) = reader.read(1) else { return XCTFail("not readable") }
        XCTAssertEqual(event.service, "dns")
        XCTAssertEqual(event.kind, "dns.query")
        // A garbage header is refused.
        memory.storeBytes(of: Int64(7), as: Int64.self)
        XCTAssertNil(EventRing(attaching: memory, available: bytes))
    }

    func testOpenConnectionsAreListedUntilClosedOrTheirProcessEnds() {
        let ring = EventRing.inProcess(slots: 100, slotBytes: 256)!
        let a = ring.connectionOpened(5, service: "smtp", transport: .tcp, peer: "127.0.0.1:4000", port: 25, time: 1000)
        let b = ring.connectionOpened(9, service: "http", transport: .tcp, peer: "[::1]:5000", port: 80, time: 2000)
        XCTAssertNotNil(a)
        XCTAssertEqual(ring.openConnections().map(\.id), [5, 9])
        XCTAssertEqual(ring.openConnections()[1].peer, "[::1]:5000")
        XCTAssertEqual(ring.openConnections()[0].pid, Int(getpid()))
        ring.connectionClosed(entry: a!, id: 5)
        XCTAssertEqual(ring.openConnections().map(\.id), [9])
        // A stale close (another id in the entry) changes nothing.
        ring.connectionClosed(entry: b!, id: 5)
        XCTAssertEqual(ring.openConnections().map(\.id), [9])
        ring.forgetConnections(ofProcess: getpid())
        XCTAssertTrue(ring.openConnections().isEmpty)
    }

    func testManyThreadsPublishingLoseNothingAndEveryIdIsOnce() {
        let ring = EventRing.inProcess(slots: 100_000, slotBytes: 256)!
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for index in 0..<5000 { _ = Self.publish(ring, "t\(thread) #\(index)") }
        }
        var cursor = EventCursor(next: 1)
        var seen: [Int] = []
        while true {
            let (events, lost) = cursor.poll(ring, limit: 4096, now: 0)
            XCTAssertEqual(lost, 0)
            if events.isEmpty { break }
            seen += events.map(\.id)
        }
        XCTAssertEqual(seen, Array(1...20_000))
    }
}

final class EventBodyTests: XCTestCase {
    private func decode(_ body: inout EventBody) throws -> [String: Any] {
        let bytes = body.finish()
        let json = Array(#"{"id":0"#.utf8) + bytes + Array("}".utf8)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
    }

    func testHostileTextIsEscapedForJSONAndForHTML() throws {
        var body = EventBody(limit: 1024)
        let hostile = "<script>alert('x')</script>\"\\\r\n\u{0}\u{2028}&"
        body.string("target", hostile)
        let bytes = body.finish()
        let text = String(decoding: bytes, as: UTF8.self)
        for forbidden in ["<", ">", "'", "&", "\u{2028}", "\r", "\n", "\u{0}"] {
            XCTAssertFalse(text.contains(forbidden), "\(forbidden.debugDescription) left raw in \(text)")
        }
        var again = EventBody(limit: 1024)
        again.string("target", hostile)
        XCTAssertEqual(try decode(&again)["target"] as? String, hostile)
    }

    func testIntegersOfEveryWidthAreWrittenExactly() throws {
        let values = [0, 7, 9, 10, 42, 99, 100, 255, 999, 1000, 9999, 10000, 65535, 99999, 100_000, 123_456_789, 1 << 53]
        var body = EventBody(limit: 4096)
        for (index, value) in values.enumerated() { body.int(named: "v\(index)", value) }
        body.address("peer", try SocketAddress(ipAddress: "10.0.200.7", port: 65535))
        let object = try decode(&body)
        for (index, value) in values.enumerated() { XCTAssertEqual((object["v\(index)"] as? NSNumber)?.int64Value, Int64(value)) }
        XCTAssertEqual(object["peer"] as? String, "10.0.200.7:65535")
        // A body with no room left for the digits is cut, not overrun.
        var small = EventBody(limit: 128)
        for index in 0..<40 { small.int(named: "n\(index)", 12345) }
        XCTAssertLessThanOrEqual(small.finish().count, 128)
    }

    func testTheBytesCopiedUnescapedAreExactlyThoseJSONAndHTMLAllow() {
        for byte in 0...255 {
            let expected = byte >= 0x20 && ![0x22, 0x5C, 0x3C, 0x3E, 0x26, 0x27, 0xE2].contains(byte)
            XCTAssertEqual(EventBody.isPlain(UInt8(byte)), expected, "byte \(byte)")
        }
    }

    func testLiteralsAndMembersEncodedOnceReadAsTheSameMembers() throws {
        var body = EventBody(limit: 1024)
        body.plain("transport", "udp")
        body.plain("odd", "a\"b<c>")
        let peer = try SocketAddress(ipAddress: "192.0.2.9", port: 5353)
        let members = EventMembers { once in
            once.address("peer", peer)
            once.int("port", 53)
        }
        body.members(members)
        body.members(members)
        let object = try decode(&body)
        XCTAssertEqual(object["transport"] as? String, "udp")
        XCTAssertEqual(object["odd"] as? String, "a\"b<c>")
        XCTAssertEqual(object["peer"] as? String, "192.0.2.9:5353")
        XCTAssertEqual(object["port"] as? Int, 53)
        // Members that do not fit are left out whole and the body marked; never overrun.
        var small = EventBody(limit: 128)
        let wide = EventMembers { $0.string("text", String(repeating: "x", count: 600)) }
        XCTAssertTrue(wide.bytes.isEmpty, "a member cut when encoded is kept out")
        let fits = EventMembers { $0.string("text", String(repeating: "y", count: 60)) }
        small.members(fits)
        small.members(fits)
        let finished = small.finish()
        XCTAssertLessThanOrEqual(finished.count, 128)
        XCTAssertTrue(small.truncated)
    }

    func testARunOfBytesIsWrittenAsEachByteWouldBe() {
        // Every byte alone and inside a run of letters: the run's fast copy and the byte-at-a-time
        // escape agree.
        for byte in 0...255 {
            let run: [UInt8] = Array("ab".utf8) + [UInt8(byte)] + Array("cd".utf8)
            var fast = EventBody(limit: 256)
            fast.text("v") { writer in
                run.withUnsafeBufferPointer { writer.append(run: $0) }
                return true
            }
            var slow = EventBody(limit: 256)
            slow.text("v") { writer in
                for value in run { writer.append(value) }
                return true
            }
            XCTAssertEqual(fast.finish(), slow.finish(), "byte \(byte)")
        }
        // A run past the room is cut and marked, never overrun.
        var small = EventBody(limit: 128)
        small.text("v") { writer in
            let long = [UInt8](repeating: UInt8(ascii: "a"), count: 500)
            long.withUnsafeBufferPointer { writer.append(run: $0) }
            return true
        }
        XCTAssertLessThanOrEqual(small.finish().count, 128)
        XCTAssertTrue(small.truncated)
    }

    func testInvalidUTF8FromAPeerBecomesReplacementCharacters() throws {
        var body = EventBody(limit: 512)
        body.text("text", bytes: [0x48, 0xFF, 0xC3, 0x28, 0x49])
        XCTAssertEqual(try decode(&body)["text"] as? String, "H\u{FFFD}\u{FFFD}(I")
    }

    func testALongValueIsCutWithinTheLimitAtACharacterAndMarked() throws {
        for limit in [128, 200, 333, 1024] {
            var body = EventBody(limit: limit)
            body.string("qname", String(repeating: "é<", count: 2000))
            body.int("answers", 3)
            let bytes = body.finish()
            XCTAssertLessThanOrEqual(bytes.count, limit, "limit \(limit)")
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(Array(#"{"id":0"#.utf8) + bytes + Array("}".utf8))) as? [String: Any])
            XCTAssertEqual(object["truncated"] as? Bool, true)
        }
    }

    func testNamedMembersListsHexAndTimes() throws {
        var body = EventBody(limit: 1024)
        body.string(named: "file\"x", "a")
        body.int(named: "bytes", 12)
        body.int("zero", 0)
        body.int("negative", -1234)
        body.int("smallest", Int.min)
        body.int("largest", Int.max)
        body.bool(named: "ok", true)
        body.strings(named: "to", ["a@b", "<c>"])
        body.hex("hex_in", [0x00, 0xAB, 0xFF, 0x10], maximum: 3)
        body.milliseconds("duration_ms", nanoseconds: 12_345_678)
        let object = try decode(&body)
        XCTAssertEqual(object["file\"x"] as? String, "a")
        XCTAssertEqual(object["bytes"] as? Int, 12)
        XCTAssertEqual(object["zero"] as? Int, 0)
        XCTAssertEqual(object["negative"] as? Int, -1234)
        XCTAssertEqual((object["smallest"] as? NSNumber)?.stringValue, String(Int.min))
        XCTAssertEqual((object["largest"] as? NSNumber)?.stringValue, String(Int.max))
        XCTAssertEqual(object["ok"] as? Bool, true)
        XCTAssertEqual(object["to"] as? [String], ["a@b", "<c>"])
        XCTAssertEqual(object["hex_in"] as? String, "00abff")
        XCTAssertEqual(object["duration_ms"] as? Double, 12.3)
    }
}

final class EventJournalTests: XCTestCase {
    func testTheJournalWritesEveryEventAsALineAndRotatesWithinItsCap() throws {
        let folder = NSTemporaryDirectory() + "inetkit-journal-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let ring = EventRing.inProcess(slots: 10_000, slotBytes: 1024)!
        let journal = EventJournal(ring: ring, folder: folder, rotateBytes: 65_536, maxBytes: 4 * 65_536, logger: Logger(label: "test"))
        try journal.start(after: 0)
        for index in 1...3000 {
            _ = HostEvents.emit(ring: ring, service: "echo", kind: "test", connection: 0) { $0.string("text", "event number \(index) with some padding to fill the file") }
        }
        journal.stop()
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        XCTAssertTrue(files.contains("events.jsonl"))
        // Rotated files are numbered on; the oldest went to keep the total under the cap.
        XCTAssertGreaterThanOrEqual(files.filter { $0 != "events.jsonl" }.count, 2, "\(files)")
        XCTAssertFalse(files.contains("events.1.jsonl"), "\(files)")
        var total = 0
        for file in files { total += try XCTUnwrap(FileManager.default.attributesOfItem(atPath: folder + "/" + file)[.size] as? Int) }
        XCTAssertLessThanOrEqual(total, 4 * 65_536 + 65_536)
        XCTAssertEqual(EventJournal.lastID(in: folder), 3000)
        // Each line is one whole event.
        let last = try String(contentsOfFile: folder + "/events.jsonl", encoding: .utf8).split(separator: "\n")
        for line in last {
            XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        XCTAssertTrue(last.last!.hasPrefix(#"{"id":3000,"#))
    }

    func testTheLastIdOfAMissingOrForeignJournalIsZero() throws {
        XCTAssertEqual(EventJournal.lastID(in: "/nonexistent/inetkit"), 0)
        let folder = NSTemporaryDirectory() + "inetkit-journal-foreign-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "not json\n{\"id\":99999999999999999999,\n".write(toFile: folder + "/events.jsonl", atomically: true, encoding: .utf8)
        XCTAssertEqual(EventJournal.lastID(in: folder), 0)
    }

    func testEventSettingsAreCheckedLikeEveryOtherKey() throws {
        func parse(_ yaml: String) throws -> HostConfig {
            try HostConfig.parse(yaml: yaml, file: "t.yaml", catalog: [])
        }
        XCTAssertEqual(try parse("events:\n  ring_size: 500\n  transcripts: false\n").events.ringSize, 500)
        XCTAssertThrowsError(try parse("events:\n  ring_size: 5\n"))
        XCTAssertThrowsError(try parse("events:\n  ring_sise: 500\n"))
        XCTAssertThrowsError(try parse("events:\n  journal_rotate_bytes: 1000000\n  journal_max_bytes: 70000\n"))
        XCTAssertThrowsError(try parse("events:\n  dashboard_token: short\n"))
        XCTAssertEqual(try parse("events:\n  dashboard_token: 0123456789abcdef0\n").events.dashboardToken, "0123456789abcdef0")
    }
}

final class EventLineTests: XCTestCase {
    func testLinesAppendedForTheJournalAreTheEventsJSONWithControlBytesBlanked() throws {
        let ring = EventRing.inProcess(slots: 10, slotBytes: 256)!
        let id = HostEvents.emit(ring: ring, service: "smtp", kind: "line", connection: 3) { $0.string("text", "a\u{1}b") }
        // A writer that put a raw control byte in (a compromised worker): still one line.
        let raw = Array(#","text":"#.utf8) + [0x22, 0x0A, 0x0D, 0x22]
        let bad = raw.withUnsafeBytes { ring.publish(service: "smtp", kind: "line", connection: 3, time: 0, body: $0) }
        var out: [UInt8] = []
        var line = EventLine()
        XCTAssertEqual(ring.appendLine(id, to: &out, line: &line), .appended)
        XCTAssertEqual(ring.appendLine(bad, to: &out, line: &line), .appended)
        XCTAssertEqual(ring.appendLine(bad + 1, to: &out, line: &line), .pending)
        let lines = out.split(separator: 0x0A)
        XCTAssertEqual(lines.count, 2)
        guard case .event(let event) = ring.read(id) else { return XCTFail() }
        XCTAssertEqual(Array(lines[0]), event.json)
        XCTAssertFalse(lines[1].contains { $0 < 0x20 })
        var cursor = EventCursor(next: 1)
        var batch: [UInt8] = []
        let (count, lost) = cursor.pollLines(ring, into: &batch, limit: 10, now: 0)
        XCTAssertEqual(count, 2)
        XCTAssertEqual(lost, 0)
        XCTAssertEqual(batch, out)
        for _ in 0..<20 { _ = HostEvents.emit(ring: ring, service: "x", kind: "y", connection: 0) { _ in } }
        XCTAssertEqual(ring.appendLine(1, to: &out, line: &line), .gone)
    }

    func testHeadsOfManyDigitsAndAlternatingNamesAreEachTheirOwn() throws {
        let ring = EventRing.inProcess(slots: 10, slotBytes: 256)!
        ring.seed(lastID: 9_999_999_998)
        var out: [UInt8] = []
        var line = EventLine()
        // The names' text is kept from one head to the next: changing names must change it.
        for (service, kind) in [("dns", "dns.query"), ("dns", "dns.query"), ("http", "http.request"), ("dns", "dns.query"), ("dns", "datagram")] {
            let id = HostEvents.emit(ring: ring, service: service, kind: kind, connection: 0) { _ in }
            XCTAssertEqual(ring.appendLine(id, to: &out, line: &line), .appended)
        }
        let lines = out.split(separator: 0x0A).map { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
        XCTAssertEqual(lines.map { $0?["id"] as? Int }, [9_999_999_999, 10_000_000_000, 10_000_000_001, 10_000_000_002, 10_000_000_003])
        XCTAssertEqual(lines.map { $0?["service"] as? String }, ["dns", "dns", "http", "dns", "dns"])
        XCTAssertEqual(lines.map { $0?["kind"] as? String }, ["dns.query", "dns.query", "http.request", "dns.query", "datagram"])
    }

    func testTheMembersEveryEventHasComeFromTheSlotHeader() throws {
        let ring = EventRing.inProcess(slots: 10, slotBytes: 256)!
        let body = Array(#","bytes":12"#.utf8)
        // Two events in one second (the cached second's text), one in the next, one hostile:
        // a time no clock gives and names with what JSON and HTML must not see.
        let times = [1_764_806_400_123, 1_764_806_400_999, 1_764_806_401_000, Int.min]
        var ids: [Int] = []
        for (index, time) in times.enumerated() {
            let service = index == 3 ? "f\"t<p>\\" : "ftp"
            ids.append(body.withUnsafeBytes { ring.publish(service: service, kind: "ftp.transfer", connection: 0, time: time, body: $0) })
        }
        var out: [UInt8] = []
        var line = EventLine()
        for id in ids { XCTAssertEqual(ring.appendLine(id, to: &out, line: &line), .appended) }
        let lines = out.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(lines[0], #"{"id":1,"time":"2025-12-04T00:00:00.123Z","service":"ftp","kind":"ftp.transfer","bytes":12}"#)
        XCTAssertEqual(lines[1], #"{"id":2,"time":"2025-12-04T00:00:00.999Z","service":"ftp","kind":"ftp.transfer","bytes":12}"#)
        XCTAssertEqual(lines[2], #"{"id":3,"time":"2025-12-04T00:00:01.000Z","service":"ftp","kind":"ftp.transfer","bytes":12}"#)
        XCTAssertEqual(lines[3], #"{"id":4,"time":"1970-01-01T00:00:00.000Z","service":"ftp","kind":"ftp.transfer","bytes":12}"#)
        for (index, id) in ids.enumerated() {
            guard case .event(let event) = ring.read(id) else { return XCTFail() }
            XCTAssertEqual(String(decoding: event.json, as: UTF8.self), lines[index])
        }
        // Years past 9999 are clamped too.
        XCTAssertEqual(EventBody.isoTime(Int.max), "9999-12-31T23:59:59.999Z")
    }
}

final class EventAddressTests: XCTestCase {
    func testAddressesAreWrittenAsTheLogWritesThem() throws {
        for address in [try SocketAddress(ipAddress: "127.0.0.1", port: 5353), try SocketAddress(ipAddress: "10.200.3.0", port: 1),
                        try SocketAddress(ipAddress: "255.255.255.255", port: 65535), try SocketAddress(ipAddress: "::1", port: 53)] {
            var body = EventBody(limit: 256)
            body.address("peer", address)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(Array(#"{"id":0"#.utf8) + body.finish() + Array("}".utf8))) as? [String: Any])
            XCTAssertEqual(object["peer"] as? String, address.logDescription)
        }
    }
}

final class EventKindTests: XCTestCase {
    func testEveryKindTheHostEmitsFitsItsSlotAndFiltersFindIt() {
        let ring = EventRing.inProcess(slots: 10, slotBytes: 256)!
        for kind in ["connection.refused", "datagram.limited", "datagram.replies_lost", "connection.close", "pop3.update", "host.upgrade", "a.kind.of.thirty.two.characters"] {
            let id = HostEvents.emit(ring: ring, service: "inetkit", kind: kind, connection: 0) { _ in }
            guard case .event(let event) = ring.read(id) else { return XCTFail(kind) }
            XCTAssertEqual(event.kind, kind)
        }
    }
}

import CInetSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The host's events, in memory every process of the host maps: a ring of fixed-size slots that
/// any worker appends to without a lock, and the table of connections open now.
///
/// An event gets its id from one shared counter (so ids increase across the whole host, and the
/// events of one connection, emitted on one event loop, are in order), then is copied into slot
/// `id % slots` under a per-slot sequence lock: the slot's sequence cell holds `-id` while it is
/// written and `id` once complete. A reader copies the slot and checks the sequence again; a slot
/// holding a newer id means the reader fell a whole ring behind. Nothing is ever queued: memory is
/// the ring's, whatever the rate.
///
/// Every worker may write this memory, so a compromised one too: readers clamp every length and
/// never trust what they find beyond that (the supervisor only copies event bytes to the journal,
/// it never parses them).
///
/// Layout, in bytes: a header of 64; the connection table (`liveCapacity` entries of 128); the
/// slots (`slotBytes` each: a header of 80, then the event's JSON body).
public final class EventRing: @unchecked Sendable {
    static let magic: Int64 = 0x494E_4554_4556_0002  // "INETEV" + layout version 2
    static let headerBytes = 64
    static let slotHeaderBytes = 80
    static let liveEntryBytes = 128
    public static let liveCapacity = 4096
    static let nameBytes = 16
    /// A kind's room in a slot (`connection.refused` and longer).
    static let kindBytes = 32
    static let peerBytes = 64

    public let slotCount: Int
    public let slotBytes: Int
    private let base: UnsafeMutableRawPointer
    private let owned: Int?

    /// The bytes a ring of this geometry takes.
    public static func byteCount(slots: Int, slotBytes: Int) -> Int {
        headerBytes + liveCapacity * liveEntryBytes + slots * slotBytes
    }

    /// The largest event body a slot holds.
    public var maximumBodyBytes: Int { slotBytes - Self.slotHeaderBytes }

    private func cell(_ index: Int) -> UnsafeMutablePointer<Int64> {
        (base + index * 8).assumingMemoryBound(to: Int64.self)
    }

    private var nextCell: UnsafeMutablePointer<Int64> { cell(1) }

    /// A ring laid out in `memory` (zeroed, `byteCount(slots:slotBytes:)` long, 8-byte aligned).
    convenience init(initializing memory: UnsafeMutableRawPointer, slots: Int, slotBytes: Int) {
        self.init(layingOut: memory, slots: slots, slotBytes: slotBytes, owned: nil)
    }

    /// Lays the ring out in `memory`; `owned`: its length, when this object unmaps it.
    private init(layingOut memory: UnsafeMutableRawPointer, slots: Int, slotBytes: Int, owned: Int?) {
        base = memory
        slotCount = slots
        self.slotBytes = slotBytes
        self.owned = owned
        cell(2).pointee = Int64(slots)
        cell(3).pointee = Int64(slotBytes)
        inetkit_atomic_store(cell(0), Self.magic)
    }

    /// The ring someone else laid out in `memory` (`available` bytes); nil when it is not one.
    init?(attaching memory: UnsafeMutableRawPointer, available: Int) {
        base = memory
        owned = nil
        guard available >= Self.headerBytes, inetkit_atomic_load((memory).assumingMemoryBound(to: Int64.self)) == Self.magic else { return nil }
        let slots = Int(memory.load(fromByteOffset: 16, as: Int64.self))
        let bytes = Int(memory.load(fromByteOffset: 24, as: Int64.self))
        guard (1...EventSettings.maximumRingSize).contains(slots), (EventSettings.minimumEventBytes...EventSettings.maximumEventBytes).contains(bytes),
              bytes % 8 == 0, Self.byteCount(slots: slots, slotBytes: bytes) <= available else { return nil }
        slotCount = slots
        slotBytes = bytes
    }

    /// A ring in this process's own memory (one process serves everything, or a test).
    public static func inProcess(slots: Int, slotBytes: Int) -> EventRing? {
        let length = byteCount(slots: slots, slotBytes: slotBytes)
        guard let memory = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0), memory != MAP_FAILED else { return nil }
        return EventRing(layingOut: memory, slots: slots, slotBytes: slotBytes, owned: length)
    }

    deinit {
        if let owned { munmap(base, owned) }
    }

    // MARK: - Events

    /// Makes the next event's id `lastID + 1` (before any is published: a new host continues
    /// the ids of its journal).
    public func seed(lastID: Int) {
        inetkit_atomic_store(nextCell, Int64(max(0, lastID)))
        inetkit_atomic_store(cell(4), Int64(max(0, lastID)))
    }

    /// The first id this ring holds or will hold (ids before it are an earlier run's: only in
    /// the journal).
    public var firstID: Int { Int(inetkit_atomic_load(cell(4))) + 1 }

    /// The id of the newest event (0 before the first).
    public var lastID: Int { Int(inetkit_atomic_load(nextCell)) }

    private func slot(for id: Int) -> UnsafeMutableRawPointer {
        writer.slot(for: id)
    }

    /// The ring's writing side as a value: what a busy handler keeps, so that publishing an
    /// event touches neither this object nor its reference count (shared by every event loop,
    /// a count changed on one core would take the cache line of `base` from the others).
    /// Valid while this ring lives.
    public var writer: EventRingWriter {
        EventRingWriter(base: base, slotCount: slotCount, slotBytes: slotBytes)
    }

    /// The id of the next event, taken before it is encoded (so it may name itself); it must
    /// be published with `publish(id:…)`.
    public func allocateID() -> Int {
        writer.allocateID()
    }

    /// Appends one event; returns its id. `body` is cut to the slot (the encoder keeps it within).
    @discardableResult
    public func publish(service: String, kind: String, connection: Int, time: Int, body: UnsafeRawBufferPointer) -> Int {
        writer.publish(service: service, kind: kind, connection: connection, time: time, body: body)
    }

    /// Writes the event `allocateID()` gave `id`.
    public func publish(id: Int, service: String, kind: String, connection: Int, time: Int, body: UnsafeRawBufferPointer) {
        writer.publish(id: id, service: service, kind: kind, connection: connection, time: time, body: body)
    }

    /// What reading one id found.
    public enum ReadResult: Sendable, Equatable {
        case event(StoredEvent)
        /// Not written yet (or being written).
        case pending
        /// Overwritten: the ring has moved on past it.
        case gone
    }

    /// What appending one id found.
    public enum AppendResult: Sendable, Equatable {
        case appended, pending, gone
    }

    /// The event with this id.
    public func read(_ id: Int) -> ReadResult {
        guard id >= 1 else { return .gone }
        guard id <= lastID else { return .pending }
        let slot = slot(for: id)
        let sequence = slot.assumingMemoryBound(to: Int64.self)
        for _ in 0..<4 {
            let before = Int(inetkit_atomic_load(sequence))
            if abs(before) > id { return .gone }
            guard before == id else { return .pending }
            let length = max(0, min(Int(slot.load(fromByteOffset: 8, as: Int64.self)), maximumBodyBytes))
            let connection = Int(slot.load(fromByteOffset: 16, as: Int64.self))
            let time = Int(slot.load(fromByteOffset: 24, as: Int64.self))
            let service = Self.loadName(at: slot + 32, bytes: Self.nameBytes)
            let kind = Self.loadName(at: slot + 48, bytes: Self.kindBytes)
            let body = [UInt8](UnsafeRawBufferPointer(start: slot + Self.slotHeaderBytes, count: length))
            inetkit_fence_acquire()
            if Int(inetkit_atomic_load(sequence)) == id {
                return .event(StoredEvent(id: id, service: service, kind: kind, connection: connection, time: time, body: body))
            }
        }
        return .gone
    }

    /// Appends the event with this id to `out` as one JSON line (`{"id":N,…}\n`, control
    /// bytes blanked) without decoding it: what the journal writes. The slot is copied first and
    /// checked after, as `read` does; on `.pending` or `.gone` nothing is appended.
    public func appendLine(_ id: Int, to out: inout [UInt8], line: inout EventLine) -> AppendResult {
        guard id >= 1 else { return .gone }
        guard id <= lastID else { return .pending }
        let slot = slot(for: id)
        let sequence = slot.assumingMemoryBound(to: Int64.self)
        let start = out.count
        for _ in 0..<4 {
            let before = Int(inetkit_atomic_load(sequence))
            if abs(before) > id { return .gone }
            guard before == id else { return .pending }
            let length = max(0, min(Int(slot.load(fromByteOffset: 8, as: Int64.self)), maximumBodyBytes))
            let time = Int(slot.load(fromByteOffset: 24, as: Int64.self))
            line.appendHead(id: id, time: time,
                            service: UnsafeRawBufferPointer(start: slot + 32, count: Self.nameBytes),
                            kind: UnsafeRawBufferPointer(start: slot + 48, count: Self.kindBytes), to: &out)
            if length > 0 {
                let body = out.count
                out.append(contentsOf: UnsafeRawBufferPointer(start: slot + Self.slotHeaderBytes, count: length))
                EventLine.blankControlBytes(in: &out, from: body)
            }
            out.append(UInt8(ascii: "}"))
            out.append(0x0A)
            inetkit_fence_acquire()
            if Int(inetkit_atomic_load(sequence)) == id { return .appended }
            out.removeSubrange(start...)
        }
        return .gone
    }

    static func storeName(_ name: String, at pointer: UnsafeMutableRawPointer, bytes: Int) {
        func store(_ utf8: UnsafeBufferPointer<UInt8>) {
            let count = min(utf8.count, bytes)
            if count > 0 { pointer.copyMemory(from: utf8.baseAddress!, byteCount: count) }
            if count < bytes { (pointer + count).initializeMemory(as: UInt8.self, repeating: 0, count: bytes - count) }
        }
        // A native string's bytes in place (no copy of the string); any other, made native.
        guard name.utf8.withContiguousStorageIfAvailable(store) == nil else { return }
        var name = name
        name.withUTF8(store)
    }

    static func loadName(at pointer: UnsafeRawPointer, bytes: Int) -> String {
        let raw = UnsafeRawBufferPointer(start: pointer, count: bytes)
        // Only what a name may hold; anything else (a compromised writer) is dropped.
        return String(decoding: raw.prefix { $0 != 0 }.filter(EventLine.nameByte), as: UTF8.self)
    }

    // MARK: - Open connections

    private func liveEntry(_ index: Int) -> UnsafeMutableRawPointer {
        base + Self.headerBytes + index * Self.liveEntryBytes
    }

    /// Notes an open connection (id: its `connection.open` event); returns its entry, or nil
    /// when the table is full around its place (it is then not listed).
    public func connectionOpened(_ id: Int, service: String, transport: Transport, peer: String, port: Int, time: Int) -> Int? {
        guard id > 0 else { return nil }
        let start = id % Self.liveCapacity
        for probe in 0..<64 {
            let index = (start + probe) % Self.liveCapacity
            let entry = liveEntry(index)
            let marker = entry.assumingMemoryBound(to: Int64.self)
            guard inetkit_atomic_load(marker) == 0, inetkit_atomic_cas(marker, 0, -1) != 0 else { continue }
            entry.storeBytes(of: Int64(getpid()), toByteOffset: 8, as: Int64.self)
            entry.storeBytes(of: Int64(time), toByteOffset: 16, as: Int64.self)
            entry.storeBytes(of: Int64(port), toByteOffset: 24, as: Int64.self)
            Self.storeName(service, at: entry + 32, bytes: Self.nameBytes)
            entry.storeBytes(of: Int64(transport == .tcp ? 1 : 2), toByteOffset: 48, as: Int64.self)
            Self.storeName(peer, at: entry + 64, bytes: Self.peerBytes)
            inetkit_atomic_store(marker, Int64(id))
            return index
        }
        return nil
    }

    /// The connection noted at `entry` has closed.
    public func connectionClosed(entry index: Int, id: Int) {
        guard (0..<Self.liveCapacity).contains(index) else { return }
        _ = inetkit_atomic_cas(liveEntry(index).assumingMemoryBound(to: Int64.self), Int64(id), 0)
    }

    /// Forgets the connections of a process that has ended (the supervisor, for a worker).
    public func forgetConnections(ofProcess pid: Int32) {
        for index in 0..<Self.liveCapacity {
            let entry = liveEntry(index)
            let marker = entry.assumingMemoryBound(to: Int64.self)
            let id = inetkit_atomic_load(marker)
            if id > 0, entry.load(fromByteOffset: 8, as: Int64.self) == Int64(pid) {
                _ = inetkit_atomic_cas(marker, id, 0)
            }
        }
    }

    /// The connections open now, oldest first.
    public func openConnections() -> [OpenConnection] {
        var result: [OpenConnection] = []
        for index in 0..<Self.liveCapacity {
            let entry = liveEntry(index)
            let marker = entry.assumingMemoryBound(to: Int64.self)
            let id = Int(inetkit_atomic_load(marker))
            guard id > 0 else { continue }
            let connection = OpenConnection(
                id: id, pid: Int(entry.load(fromByteOffset: 8, as: Int64.self)),
                started: Int(entry.load(fromByteOffset: 16, as: Int64.self)),
                port: Int(entry.load(fromByteOffset: 24, as: Int64.self)),
                service: Self.loadName(at: entry + 32, bytes: Self.nameBytes),
                transport: entry.load(fromByteOffset: 48, as: Int64.self) == 2 ? .udp : .tcp,
                peer: Self.loadName(at: entry + 64, bytes: Self.peerBytes))
            inetkit_fence_acquire()
            if Int(inetkit_atomic_load(marker)) == id { result.append(connection) }
        }
        return result.sorted { $0.id < $1.id }
    }
}

/// One event as read back from the ring.
public struct StoredEvent: Sendable, Equatable {
    public var id: Int
    public var service: String
    public var kind: String
    /// The id of the connection's `connection.open` event (0: none).
    public var connection: Int
    /// Milliseconds since 1970.
    public var time: Int
    /// The JSON members particular to the event, each preceded by a comma (`,"conn":3,…`; no
    /// braces): those every event has are the fields above.
    public var body: [UInt8]

    public init(id: Int, service: String, kind: String, connection: Int, time: Int, body: [UInt8]) {
        self.id = id
        self.service = service
        self.kind = kind
        self.connection = connection
        self.time = time
        self.body = body
    }

    /// The whole event as one JSON object on one line, as the journal has it. Control bytes a
    /// compromised writer may have put in are blanked, so a line stays a line.
    public var json: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count + 112)
        var line = EventLine()
        var service = service, kind = kind
        service.withUTF8 { service in
            kind.withUTF8 { kind in
                line.appendHead(id: id, time: time, service: UnsafeRawBufferPointer(service), kind: UnsafeRawBufferPointer(kind), to: &bytes)
            }
        }
        let start = bytes.count
        bytes.append(contentsOf: body)
        EventLine.blankControlBytes(in: &bytes, from: start)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    public var jsonString: String { String(decoding: json, as: UTF8.self) }
}

/// Writes the members every event has, from a slot's header: `{"id":N,"time":"…","service":"…",
/// "kind":"…"` (the body follows, then `}`). One writer keeps the text of the last second, so a
/// busy journal formats a date once a second. Names keep only what a name may hold (a
/// compromised worker's bytes are dropped), times are clamped.
public struct EventLine: Sendable {
    private var second = Int.min
    private var prefix: [UInt8] = []
    /// The raw service and kind the last head had, and their text
    /// (`Z","service":"…","kind":"…"`): a busy journal's events mostly share both.
    private var rawService: [UInt8] = []
    private var rawKind: [UInt8] = []
    private var names: [UInt8] = []

    public init() {}

    static func nameByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != 0x22 && byte != 0x5C && byte != 0x3C && byte != 0x3E && byte != 0x26 && byte != 0x27
    }

    /// The longest head: `{"id":` + 19 digits + `,"time":"` + 24 + `","service":"` + 16 +
    /// `","kind":"` + 32 + `"`.
    static let headCapacity = 160

    mutating func appendHead(id: Int, time: Int, service: UnsafeRawBufferPointer, kind: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let time = min(max(time, 0), 253_402_300_799_999)
        let second = time / 1000
        if second != self.second {
            prefix.removeAll(keepingCapacity: true)
            EventBody.appendTime(second * 1000, to: &prefix)
            prefix.removeLast(4)  // "000Z"
            self.second = second
        }
        let service = UnsafeRawBufferPointer(rebasing: service.prefix(EventRing.nameBytes))
        let kind = UnsafeRawBufferPointer(rebasing: kind.prefix(EventRing.kindBytes))
        if !Self.same(rawService, service) || !Self.same(rawKind, kind) { makeNames(service: service, kind: kind) }
        let prefix = prefix
        let names = names
        // Written into stack memory with plain stores, then appended in one copy.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.headCapacity) { buffer in
            let base = buffer.baseAddress!
            var count = 0
            func put(_ text: StaticString) {
                text.withUTF8Buffer { (base + count).update(from: $0.baseAddress!, count: $0.count) }
                count += text.utf8CodeUnitCount
            }
            put(#"{"id":"#)
            let id = max(0, id)
            let width = EventBody.decimalWidth(id)
            EventBody.writeDecimal(id, width: width, at: base + count)
            count += width
            put(#","time":""#)
            prefix.withUnsafeBufferPointer { (base + count).update(from: $0.baseAddress!, count: $0.count) }
            count += prefix.count
            let millis = time - second * 1000
            base[count] = UInt8(ascii: "0") + UInt8(millis / 100)
            base[count + 1] = UInt8(ascii: "0") + UInt8(millis / 10 % 10)
            base[count + 2] = UInt8(ascii: "0") + UInt8(millis % 10)
            count += 3
            names.withUnsafeBufferPointer { (base + count).update(from: $0.baseAddress!, count: $0.count) }
            count += names.count
            out.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
        }
    }

    private static func same(_ kept: [UInt8], _ raw: UnsafeRawBufferPointer) -> Bool {
        guard kept.count == raw.count else { return false }
        guard let start = raw.baseAddress else { return true }
        return kept.withUnsafeBytes { memcmp($0.baseAddress!, start, raw.count) == 0 }
    }

    /// The names' text, keeping only what a name may hold (a compromised worker's other bytes
    /// are dropped) up to the first zero byte.
    private mutating func makeNames(service: UnsafeRawBufferPointer, kind: UnsafeRawBufferPointer) {
        rawService.removeAll(keepingCapacity: true)
        rawService.append(contentsOf: service)
        rawKind.removeAll(keepingCapacity: true)
        rawKind.append(contentsOf: kind)
        names.removeAll(keepingCapacity: true)
        names.append(contentsOf: #"Z","service":""#.utf8)
        for byte in service.prefix(while: { $0 != 0 }) where Self.nameByte(byte) { names.append(byte) }
        names.append(contentsOf: #"","kind":""#.utf8)
        for byte in kind.prefix(while: { $0 != 0 }) where Self.nameByte(byte) { names.append(byte) }
        names.append(UInt8(ascii: "\""))
    }

    /// The encoder escapes control bytes, so a line break in a body is a forged line: blanked.
    /// Looked for with a minimum (vectorised), fixed byte by byte only when there is one.
    static func blankControlBytes(in bytes: inout [UInt8], from start: Int) {
        bytes.withUnsafeMutableBufferPointer { all in
            let body = UnsafeMutableBufferPointer(rebasing: all[start...])
            var smallest: UInt8 = 0xFF
            for byte in body { smallest = min(smallest, byte) }
            guard smallest < 0x20 else { return }
            for index in body.indices where body[index] < 0x20 { body[index] = 0x20 }
        }
    }
}

/// One connection open now, as the ring's table holds it.
public struct OpenConnection: Sendable, Equatable {
    public var id: Int
    public var pid: Int
    /// Milliseconds since 1970.
    public var started: Int
    public var port: Int
    public var service: String
    public var transport: Transport
    public var peer: String
}

/// Reads a ring from an id onwards: what the journal writer and every live subscriber keep.
public struct EventCursor: Sendable {
    /// The next id to read.
    public private(set) var next: Int
    private var stuckSince: Double?
    /// The journal's line writer (its cached second).
    private var line = EventLine()

    /// From `next` (1: from the oldest the ring still holds).
    public init(next: Int) {
        self.next = max(1, next)
    }

    /// Up to `limit` events from the cursor on, appended to `out` as JSON lines (the journal's
    /// way: nothing decoded); returns how many were appended and how many were lost.
    public mutating func pollLines(_ ring: EventRing, into out: inout [UInt8], limit: Int, now: Double) -> (count: Int, lost: Int) {
        var line = self.line
        defer { self.line = line }
        return advance(ring, limit: limit, now: now) { ring.appendLine($0, to: &out, line: &line) }
    }

    /// Up to `limit` events from the cursor on, and how many were lost (overwritten before they
    /// were read). A slot left half-written by a process that died is skipped after a second.
    public mutating func poll(_ ring: EventRing, limit: Int, now: Double) -> (events: [StoredEvent], lost: Int) {
        var events: [StoredEvent] = []
        let (_, lost) = advance(ring, limit: limit, now: now) { id in
            switch ring.read(id) {
            case .event(let event):
                events.append(event)
                return .appended
            case .pending: return .pending
            case .gone: return .gone
            }
        }
        return (events, lost)
    }

    /// Takes ids from `next` on with `take` while they are there: older than the ring holds,
    /// overwritten, or stuck half-written for over a second counts as lost.
    private mutating func advance(_ ring: EventRing, limit: Int, now: Double, take: (Int) -> EventRing.AppendResult) -> (count: Int, lost: Int) {
        var count = 0
        var lost = 0
        let last = ring.lastID
        let oldest = max(ring.firstID, last - ring.slotCount + 1)
        if next < oldest {
            lost += oldest - next
            next = oldest
        }
        while next <= last && count < limit {
            switch take(next) {
            case .appended:
                count += 1
                next += 1
                stuckSince = nil
            case .gone:
                lost += 1
                next += 1
                stuckSince = nil
            case .pending:
                if let since = stuckSince, now - since > 1 {
                    lost += 1
                    next += 1
                    stuckSince = nil
                } else {
                    if stuckSince == nil { stuckSince = now }
                    return (count, lost)
                }
            }
        }
        return (count, lost)
    }
}

/// Publishes events into a ring's memory (`EventRing.writer`): plain values, no reference
/// counting. Valid only while the `EventRing` it came from lives.
public struct EventRingWriter: @unchecked Sendable {
    // (@unchecked: a pointer into memory that every process maps; writes go through the
    // sequence lock of each slot.)
    let base: UnsafeMutableRawPointer
    let slotCount: Int
    let slotBytes: Int

    /// The largest event body a slot holds.
    public var maximumBodyBytes: Int { slotBytes - EventRing.slotHeaderBytes }

    func slot(for id: Int) -> UnsafeMutableRawPointer {
        base + EventRing.headerBytes + EventRing.liveCapacity * EventRing.liveEntryBytes + ((id - 1) % slotCount) * slotBytes
    }

    /// The id of the next event (see `EventRing.allocateID`).
    public func allocateID() -> Int {
        Int(inetkit_atomic_add((base + 8).assumingMemoryBound(to: Int64.self), 1)) + 1
    }

    /// Appends one event; returns its id.
    @discardableResult
    public func publish(service: String, kind: String, connection: Int, time: Int, body: UnsafeRawBufferPointer) -> Int {
        let id = allocateID()
        publish(id: id, service: service, kind: kind, connection: connection, time: time, body: body)
        return id
    }

    /// Writes the event `allocateID()` gave `id`.
    public func publish(id: Int, service: String, kind: String, connection: Int, time: Int, body: UnsafeRawBufferPointer) {
        let slot = begin(id)
        let length = min(body.count, maximumBodyBytes)
        if length > 0 { (slot + EventRing.slotHeaderBytes).copyMemory(from: body.baseAddress!, byteCount: length) }
        commit(id, slot: slot, service: service, kind: kind, connection: connection, time: time, length: length)
    }

    /// Encodes the event `allocateID()` gave `id` straight into its slot: `fill` writes the
    /// body there (no buffer of its own, no copy), then the header is written and the slot
    /// published. The slot reads as being written until `fill` returns, so `fill` should do
    /// the event's work and nothing that waits (a reader skips a slot stuck for a second).
    @inline(__always)
    public func publish(id: Int, service: String, kind: String, connection: Int, time: Int, _ fill: (inout EventBody) -> Void) {
        let slot = begin(id)
        var body = EventBody(slot: slot + EventRing.slotHeaderBytes, limit: maximumBodyBytes)
        fill(&body)
        let length = min(body.finished().count, maximumBodyBytes)
        commit(id, slot: slot, service: service, kind: kind, connection: connection, time: time, length: length)
    }

    /// Marks the slot of `id` as being written (its sequence `-id`); returns the slot.
    private func begin(_ id: Int) -> UnsafeMutableRawPointer {
        let slot = slot(for: id)
        inetkit_atomic_store(slot.assumingMemoryBound(to: Int64.self), -Int64(id))
        inetkit_fence_release()
        return slot
    }

    /// Writes the header of the slot `begin` returned and publishes it (sequence `id`).
    private func commit(_ id: Int, slot: UnsafeMutableRawPointer, service: String, kind: String, connection: Int, time: Int, length: Int) {
        slot.storeBytes(of: Int64(connection), toByteOffset: 16, as: Int64.self)
        slot.storeBytes(of: Int64(time), toByteOffset: 24, as: Int64.self)
        EventRing.storeName(service, at: slot + 32, bytes: EventRing.nameBytes)
        EventRing.storeName(kind, at: slot + 48, bytes: EventRing.kindBytes)
        slot.storeBytes(of: Int64(length), toByteOffset: 8, as: Int64.self)
        inetkit_atomic_store(slot.assumingMemoryBound(to: Int64.self), Int64(id))
    }
}

import CInetSupport
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Memory the supervisor shares with every worker (a memfd each worker maps): the counters of
/// every service and transport, the distinct-peer set, the restart counts, when the host
/// started, and the table of every service's listeners. So each worker's status page, metrics,
/// SNMP table and built-in DNS zone show the whole host, not just the worker's own services.
///
/// Layout, in 64-bit cells: a header of 16; 128 entries of 16 (3 cells of name, 1 of
/// transport, 12 counters); a listing area of 64 KiB (one line per listener, guarded by a
/// sequence lock); a peer set of 65,536 hashes. The supervisor alone adds entries and writes
/// the listing; everyone updates counters.
public final class SharedRegion: @unchecked Sendable {
    static let magic: Int64 = 0x494E_4554_4B49_5402  // "INETKIT" + layout version 2
    static let headerCells = 16
    static let maximumEntries = 128
    static let entryCells = 16
    static let nameCells = 3
    static let listingBytes = 65_536
    static let peerCells = 65_536

    static var entriesOffset: Int { headerCells }
    static var listingOffset: Int { headerCells + maximumEntries * entryCells }
    static var peersOffset: Int { listingOffset + listingBytes / 8 }
    static var totalCells: Int { peersOffset + peerCells }
    static var totalBytes: Int { totalCells * 8 }

    // Header cells.
    private enum Header: Int {
        case magic = 0, entryCount, started, listingSequence, listingLength
    }

    /// The memfd (close-on-exec; the supervisor passes it to each worker explicitly).
    public let descriptor: Int32
    private let cells: UnsafeMutablePointer<Int64>
    private let cache = NIOLockedValueBox<[String: ServiceCounters]>([:])
    let peerSet: SharedPeerSet
    /// The host's event ring, after the counters (nil: the region was made without one).
    public let events: EventRing?

    private init(descriptor: Int32, cells: UnsafeMutablePointer<Int64>, events: EventRing?) {
        self.descriptor = descriptor
        self.cells = cells
        self.events = events
        peerSet = SharedPeerSet(cells: cells + Self.peersOffset, count: Self.peerCells)
    }

    /// A new region (the supervisor, at start), with an event ring of `eventSlots` slots of
    /// `eventBytes` each after the counters (none with 0 slots); its ids follow `lastEventID`.
    public static func create(eventSlots: Int = 0, eventBytes: Int = 1024, lastEventID: Int = 0) throws(RegionError) -> SharedRegion {
        var fd = inetkit_memfd("inetkit-counters")
        if fd >= 0 && fd < 256 {
            // Clear of the descriptors 3, 4, … a worker receives its sockets at.
            let moved = fcntl(fd, F_DUPFD_CLOEXEC, 256)
            if moved >= 0 {
                close(fd)
                fd = moved
            }
        }
        guard fd >= 0 else { throw RegionError(message: "memfd_create: \(String(cString: strerror(errno)))") }
        let ringBytes = eventSlots > 0 ? EventRing.byteCount(slots: eventSlots, slotBytes: eventBytes) : 0
        guard ftruncate(fd, off_t(totalBytes + ringBytes)) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw RegionError(message: "ftruncate: \(message)")
        }
        let region = try map(fd, length: totalBytes + ringBytes, newRing: eventSlots > 0 ? (eventSlots, eventBytes, lastEventID) : nil)
        region.cell(.magic).store(Int(magic))
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let started = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        region.cell(.started).store(Int(Int64(bitPattern: started.bitPattern)))
        return region
    }

    /// The region passed as descriptor `fd` (a worker, or the supervisor after an upgrade).
    public static func attach(descriptor fd: Int32) throws(RegionError) -> SharedRegion {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw RegionError(message: "descriptor \(fd): \(String(cString: strerror(errno)))") }
        guard Int(info.st_size) >= totalBytes else { throw RegionError(message: "descriptor \(fd) is not an InetKit counter region of this version") }
        let region = try map(fd, length: Int(info.st_size), newRing: nil)
        guard region.cell(.magic).load() == Int(magic) else { throw RegionError(message: "descriptor \(fd) is not an InetKit counter region of this version") }
        return region
    }

    private static func map(_ fd: Int32, length: Int, newRing: (slots: Int, bytes: Int, after: Int)?) throws(RegionError) -> SharedRegion {
        // Populated at once: the event ring is memory the host uses from the start, not RSS
        // that seems to grow with the traffic as its pages are first touched.
        guard let raw = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0), raw != MAP_FAILED else {
            throw RegionError(message: "mmap: \(String(cString: strerror(errno)))")
        }
        var ring: EventRing?
        if let newRing {
            ring = EventRing(initializing: raw + totalBytes, slots: newRing.slots, slotBytes: newRing.bytes)
            ring?.seed(lastID: newRing.after)
        } else if length > totalBytes {
            ring = EventRing(attaching: raw + totalBytes, available: length - totalBytes)
        }
        return SharedRegion(descriptor: fd, cells: raw.bindMemory(to: Int64.self, capacity: totalCells), events: ring)
    }

    private func cell(_ header: Header) -> CounterCell { CounterCell(pointer: cells + header.rawValue) }

    /// When the host started (seconds since 1970): the first supervisor's start, kept across
    /// restarts, reloads and upgrades.
    public var started: Double {
        Double(bitPattern: UInt64(bitPattern: Int64(cell(.started).load())))
    }

    // MARK: - Entries

    private func entryName(_ index: Int) -> String {
        let base = UnsafeMutableRawPointer(cells + Self.entriesOffset + index * Self.entryCells)
        let bytes = UnsafeRawBufferPointer(start: base, count: Self.nameCells * 8)
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private func entryTransport(_ index: Int) -> Transport? {
        switch cells[Self.entriesOffset + index * Self.entryCells + Self.nameCells] {
        case 1: .tcp
        case 2: .udp
        default: nil
        }
    }

    private func findEntry(service: String, transport: Transport) -> Int? {
        // Every worker may write the region: a count out of range is clamped, never trusted.
        let count = max(0, min(cell(.entryCount).load(), Self.maximumEntries))
        for index in 0..<count where entryTransport(index) == transport && entryName(index) == service {
            return index
        }
        return nil
    }

    /// Adds an entry for each (service, transport) that has none (the supervisor only).
    public func ensureEntries(_ wanted: [(service: String, transport: Transport)]) throws(RegionError) {
        for (service, transport) in wanted where findEntry(service: service, transport: transport) == nil {
            let index = cell(.entryCount).load()
            guard index >= 0 else { throw RegionError(message: "the entry count was overwritten (\(index))") }
            guard index < Self.maximumEntries else { throw RegionError(message: "more than \(Self.maximumEntries) service entries") }
            let name = Array(service.utf8)
            guard name.count < Self.nameCells * 8 else { throw RegionError(message: "service name '\(service)' is too long for the counter region") }
            let base = UnsafeMutableRawPointer(cells + Self.entriesOffset + index * Self.entryCells)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: Self.entryCells * 8)
            for (offset, byte) in name.enumerated() { base.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self) }
            cells[Self.entriesOffset + index * Self.entryCells + Self.nameCells] = transport == .tcp ? 1 : 2
            cell(.entryCount).store(index + 1)
        }
    }

    /// The shared counters of one service and transport (the same object on every call), or
    /// nil when the supervisor made no entry for it.
    public func counters(service: String, transport: Transport) -> ServiceCounters? {
        let key = "\(service)/\(transport)"
        if let known = cache.withLockedValue({ $0[key] }) { return known }
        guard let index = findEntry(service: service, transport: transport) else { return nil }
        let counters = ServiceCounters(
            service: service, transport: transport,
            cells: cells + Self.entriesOffset + index * Self.entryCells + Self.nameCells + 1,
            peers: peerSet, entry: index)
        return cache.withLockedValue { cache in
            if let raced = cache[key] { return raced }
            cache[key] = counters
            return counters
        }
    }

    // MARK: - Listing

    /// Changes whenever the supervisor publishes a new listing.
    public var listingGeneration: Int { cell(.listingSequence).load() }

    /// Writes every service's state and listeners (the supervisor, after a start, restart or
    /// reload).
    public func publish(_ services: [ServiceListing]) {
        var bytes = Array(Self.renderListing(services).utf8)
        if bytes.count > Self.listingBytes { bytes = Array(bytes.prefix(Self.listingBytes)) }
        let sequence = cell(.listingSequence)
        sequence.wrappingAdd(1)  // odd: being written
        let area = UnsafeMutableRawPointer(cells + Self.listingOffset)
        bytes.withUnsafeBytes { area.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        cell(.listingLength).store(bytes.count)
        sequence.wrappingAdd(1)  // even: complete
    }

    /// The listing last published (empty before the first).
    public func listing() -> [ServiceListing] {
        for _ in 0..<1000 {
            let before = cell(.listingSequence).load()
            if before & 1 == 1 { sched_yield(); continue }
            let length = min(max(0, cell(.listingLength).load()), Self.listingBytes)
            let bytes = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(cells + Self.listingOffset), count: length))
            guard cell(.listingSequence).load() == before else { continue }
            return Self.parseListing(String(decoding: bytes, as: UTF8.self))
        }
        return []
    }

    /// One line per service (`S name enabled state`) and per listener (`L name transport
    /// address port`), tab-separated.
    public static func renderListing(_ services: [ServiceListing]) -> String {
        var text = ""
        for service in services {
            text += "S\t\(service.name)\t\(service.enabled ? 1 : 0)\t\(service.state)\n"
            for listener in service.listeners {
                text += "L\t\(service.name)\t\(listener.transport)\t\(listener.address)\t\(listener.port)\n"
            }
        }
        return text
    }

    /// Reads what `renderListing` wrote; anything else (the region is writable by every
    /// worker, so by a compromised one too) is skipped, never trusted.
    public static func parseListing(_ text: String) -> [ServiceListing] {
        var services: [ServiceListing] = []
        // Split on bytes, not Characters (a CR before an LF would join them into one), and skip
        // any line with another control character: nothing the supervisor writes has one.
        for line in text.utf8.split(separator: 0x0A) {
            guard !line.contains(where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F }) else { continue }
            let fields = line.split(separator: 0x09, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if fields.count == 4, fields[0] == "S" {
                services.append(ServiceListing(name: fields[1], enabled: fields[2] == "1", state: fields[3], listeners: []))
            } else if fields.count == 5, fields[0] == "L", let transport = Transport(rawValue: fields[2]), let port = Int(fields[4]),
                      (0...65_535).contains(port),
                      let index = services.lastIndex(where: { $0.name == fields[1] }) {
                services[index].listeners.append(ListenerStatus(transport: transport, address: fields[3], port: port))
            }
        }
        return services
    }
}

/// A service as the supervisor lists it for every worker.
public struct ServiceListing: Sendable, Equatable {
    public var name: String
    public var enabled: Bool
    /// `running`, `starting`, `backoff`, `stopped`.
    public var state: String
    public var listeners: [ListenerStatus]

    public init(name: String, enabled: Bool, state: String, listeners: [ListenerStatus]) {
        self.name = name
        self.enabled = enabled
        self.state = state
        self.listeners = listeners
    }
}

extension ListenerStatus: Equatable {
    public static func == (a: ListenerStatus, b: ListenerStatus) -> Bool {
        a.transport == b.transport && a.address == b.address && a.port == b.port
    }
}

public struct RegionError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { "shared counter region: \(message)" }

    public init(message: String) {
        self.message = message
    }
}

/// A bounded set of (entry, peer address) hashes in shared memory: open addressing with
/// compare-and-swap, so any worker may add. When a probe finds no room the peer is not
/// counted (the count is a bound, like the process-local set's).
final class SharedPeerSet: @unchecked Sendable {
    private let cells: UnsafeMutablePointer<Int64>
    private let count: Int
    static let probes = 32

    init(cells: UnsafeMutablePointer<Int64>, count: Int) {
        self.cells = cells
        self.count = count
    }

    /// Whether the address was new for the entry.
    func insert(_ host: String, entry: Int) -> Bool {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(truncatingIfNeeded: entry &* 0x9E37_79B9)
        for byte in host.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        if hash == 0 { hash = 1 }
        let value = Int64(bitPattern: hash)
        var slot = Int(hash % UInt64(count))
        for _ in 0..<Self.probes {
            let pointer = cells + slot
            let current = inetkit_atomic_load(pointer)
            if current == value { return false }
            if current == 0 {
                if inetkit_atomic_cas(pointer, 0, value) != 0 { return true }
                if inetkit_atomic_load(pointer) == value { return false }
            }
            slot = (slot + 1) % count
        }
        return false
    }
}

#if canImport(Glibc)
import CInetSupport
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import Synchronization

/// What a status page or the SNMP agent may know of the host: every service, where it listens,
/// and its counters. Created with the plan and attached to the host when the host starts, so
/// services can hold it before the host exists.
///
/// A reload makes new services from a new plan; if that plan brought a directory of its own,
/// the host makes it follow the one it started with (`follow(_:)`), so every generation of
/// services sees the same host: the same services, counters, start time and changes.
public final class HostDirectory: Sendable {
    private let source = NIOLockedValueBox<(@Sendable () -> [ServiceStatus])?>(nil)
    private let leader = NIOLockedValueBox<HostDirectory?>(nil)
    private let ownStart: Double
    /// The supervisor's shared region, when this process is one of its workers: the services,
    /// listeners, start time and changes of the whole host come from it.
    private let region = NIOLockedValueBox<SharedRegion?>(nil)

    public init() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        ownStart = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    private let changes = Synchronization.Atomic<Int>(0)

    /// Where this process's services emit their events (attached by the host when it starts;
    /// a later plan's directory emits into the same ring).
    public let events = HostEvents()

    /// The mail store SMTP delivers to (`services.smtp.mail_dir`): what the mail API reads.
    public var mailDirectory: String? {
        get { mailRoot.withLockedValue { $0 } }
        set { mailRoot.withLockedValue { $0 = newValue } }
    }
    private let mailRoot = NIOLockedValueBox<String?>(nil)

    /// The folders uploads land in (FTP users with `write: true`, TFTP's `upload_dir`): the only
    /// places the uploads API serves files from.
    public var uploadFolders: [String] {
        get { uploadRoots.withLockedValue { $0 } }
        set { uploadRoots.withLockedValue { $0 = newValue } }
    }
    private let uploadRoots = NIOLockedValueBox<[String]>([])

    /// The directory this one stands for, if any (one level: the host's own never follows).
    private var followed: HostDirectory? { leader.withLockedValue { $0 } }

    /// When the host started (seconds since 1970), for uptime.
    public var started: Double {
        if let followed { return followed.started }
        if let region = region.withLockedValue({ $0 }) { return region.started }
        return ownStart
    }

    /// Changes whenever a service starts or stops listening: a cheap check for whoever keeps
    /// something derived from `services()` (the DNS service's built-in zone).
    public var generation: Int {
        if let followed { return followed.generation }
        if let region = region.withLockedValue({ $0 }) { return region.listingGeneration &+ changes.load(ordering: .acquiring) }
        return changes.load(ordering: .acquiring)
    }

    func listenersChanged() {
        if let followed { return followed.listenersChanged() }
        changes.wrappingAdd(1, ordering: .releasing)
    }

    func attach(_ provider: @escaping @Sendable () -> [ServiceStatus]) {
        source.withLockedValue { $0 = provider }
    }

    /// Answers from the supervisor's region: every service of the host, whichever worker runs it.
    func attach(region shared: SharedRegion) {
        region.withLockedValue { $0 = shared }
        source.withLockedValue {
            $0 = {
                shared.listing().map { listing in
                    let transports: [Transport] = [.tcp, .udp]
                    return ServiceStatus(
                        name: listing.name, enabled: listing.enabled, listeners: listing.listeners,
                        counters: transports.compactMap { shared.counters(service: listing.name, transport: $0)?.snapshot() },
                        state: listing.state)
                }
            }
        }
    }

    /// From now on, answer as `other` does.
    func follow(_ other: HostDirectory) {
        guard other !== self else { return }
        let leading = other.followed ?? other
        leader.withLockedValue { $0 = leading }
        // The ring is the host's; what the new config says of events (transcripts, hex) applies.
        events.attach(ring: leading.events.readableRing, settings: leading.events.settings)
    }

    /// Every service of the plan, in plan order (empty before the host starts).
    public func services() -> [ServiceStatus] {
        if let followed { return followed.services() }
        let provider: (@Sendable () -> [ServiceStatus])? = source.withLockedValue { $0 }
        guard let provider else { return [] }
        return provider()
    }
}

/// One bound socket as the status page shows it.
public struct ListenerStatus: Sendable {
    public var transport: Transport
    /// `address:port`, IPv6 in brackets.
    public var address: String
    public var port: Int

    public init(transport: Transport, address: String, port: Int) {
        self.transport = transport
        self.address = address
        self.port = port
    }
}

/// One service as the status page shows it.
public struct ServiceStatus: Sendable {
    public var name: String
    public var enabled: Bool
    /// Where it listens now (empty when disabled).
    public var listeners: [ListenerStatus]
    /// One snapshot per transport the service speaks.
    public var counters: [ServiceCounters.Snapshot]
    /// `running`, `disabled`, or under the supervisor also `starting` and `backoff` (a worker
    /// that keeps crashing waits before its next start).
    public var state: String

    public init(name: String, enabled: Bool, listeners: [ListenerStatus], counters: [ServiceCounters.Snapshot], state: String? = nil) {
        self.name = name
        self.enabled = enabled
        self.listeners = listeners
        self.counters = counters
        self.state = state ?? (enabled ? "running" : "disabled")
    }

    /// Restarts of the worker serving this service.
    public var restarts: Int { counters.map(\.restarts).max() ?? 0 }
}

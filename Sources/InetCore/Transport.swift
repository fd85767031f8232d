/// The transport a listener or a client exchange uses.
public enum Transport: String, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case tcp
    case udp

    public var description: String { rawValue }

    public static func < (lhs: Transport, rhs: Transport) -> Bool { lhs.rawValue < rhs.rawValue }
}

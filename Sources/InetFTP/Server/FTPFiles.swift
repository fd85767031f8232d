#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file-system request of an FTP session. Every path is resolved inside the user's root
/// (`FTPFileSystem`), links followed and checked.
enum FTPFileRequest: Sendable {
    /// Login: the user's root, resolved (nil when it does not exist).
    case home(FTPUser)
    case changeDirectory(FTPFileSystem, String)
    /// SIZE, MDTM, MLST: what the path is.
    case inspect(FTPFileSystem, String)
    /// STAT with a path: its LIST lines.
    case listing(FTPFileSystem, String, writable: Bool)
    case delete(FTPFileSystem, String)
    case makeDirectory(FTPFileSystem, String)
    case removeDirectory(FTPFileSystem, String)
    /// RNFR: the path to rename, which must exist.
    case renameSource(FTPFileSystem, String)
    case rename(FTPFileSystem, fromReal: String, to: String)
}

/// Why a file request or a transfer's file was refused.
enum FTPFileFailure: Error, Sendable, Equatable {
    case path(FTPPathError)
    case notADirectory
    /// The path is a folder where the command (named) needs a file.
    case isADirectory(String)
    /// The path is a file where the command (named) needs a folder.
    case needsDirectory(String)
    case unreadable
    case cannotCreate
    case restartPastEnd(Int)
    /// The system call for the command (named) failed.
    case operationFailed(String)
    /// The user's root itself may not be removed or renamed.
    case root
}

/// What came of a file request.
enum FTPFileResult: Sendable {
    case home(FTPFileSystem?)
    /// CWD: the new current folder.
    case directory(String)
    case found(virtual: String, real: String, FTPEntry)
    case listing(String)
    /// A change was made (DELE, MKD, RMD, RNTO) to this path.
    case changed(virtual: String)
    case failed(FTPFileFailure)
}

/// The file-system side of FTP, synchronous: run on a thread pool by `FTPEffects`, called
/// directly by unit tests.
enum FTPFiles {
    static func perform(_ request: FTPFileRequest) -> FTPFileResult {
        do {
            return try run(request)
        } catch let failure as FTPFileFailure {
            return .failed(failure)
        } catch let error as FTPPathError {
            return .failed(.path(error))
        } catch {
            return .failed(.operationFailed("?"))
        }
    }

    private static func run(_ request: FTPFileRequest) throws -> FTPFileResult {
        switch request {
        case .home(let user):
            return .home(FTPFileSystem(root: user.home))
        case .changeDirectory(let files, let argument):
            let (virtual, real) = try files.existing(argument)
            guard let entry = FTPEntry.info(real, name: ""), entry.isDirectory else { throw FTPFileFailure.notADirectory }
            return .directory(virtual)
        case .inspect(let files, let argument):
            let (virtual, real) = try files.existing(argument)
            guard let entry = FTPEntry.info(real, name: virtual) else { throw FTPFileFailure.path(.notFound) }
            return .found(virtual: virtual, real: real, entry)
        case .listing(let files, let argument, let writable):
            let (_, real) = try files.existing(argument)
            return .listing(listingText("LIST", real: real, writable: writable))
        case .delete(let files, let argument):
            let (virtual, real) = try files.existing(argument)
            if let entry = FTPEntry.info(real, name: ""), entry.isDirectory { throw FTPFileFailure.isADirectory("DELE") }
            guard unlink(real) == 0 else { throw FTPFileFailure.operationFailed("DELE") }
            return .changed(virtual: virtual)
        case .makeDirectory(let files, let argument):
            let (virtual, real) = try files.creatable(argument)
            guard mkdir(real, 0o755) == 0 else { throw FTPFileFailure.operationFailed("MKD") }
            return .changed(virtual: virtual)
        case .removeDirectory(let files, let argument):
            let (virtual, real) = try files.existing(argument)
            guard virtual != "/" else { throw FTPFileFailure.root }
            guard rmdir(real) == 0 else { throw FTPFileFailure.operationFailed("RMD") }
            return .changed(virtual: virtual)
        case .renameSource(let files, let argument):
            let (virtual, real) = try files.existing(argument)
            guard virtual != "/" else { throw FTPFileFailure.root }
            let entry = FTPEntry.info(real, name: virtual) ?? FTPEntry(name: virtual, isDirectory: false, size: 0, modified: 0, mode: 0, links: 0)
            return .found(virtual: virtual, real: real, entry)
        case .rename(let files, let from, let argument):
            let (virtual, real) = try files.creatable(argument)
            guard rename(from, real) == 0 else { throw FTPFileFailure.operationFailed("RNTO") }
            return .changed(virtual: virtual)
        }
    }

    /// Listing lines (CRLF-terminated) of a folder or a single file.
    static func listingText(_ verb: String, real: String, writable: Bool, arguments: String = "") -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard let entry = FTPEntry.info(real, name: String(real.split(separator: "/").last ?? "")) else { return "" }
        let entries = entry.isDirectory ? (FTPEntry.list(real, all: arguments.contains("a")) ?? []) : [entry]
        switch verb {
        case "NLST": return entries.map { $0.name + "\r\n" }.joined()
        case "MLSD": return entries.map { $0.facts(writable: writable) + "\r\n" }.joined()
        default: return entries.map { $0.longFormat(now: Int(now.tv_sec)) + "\r\n" }.joined()
        }
    }
}

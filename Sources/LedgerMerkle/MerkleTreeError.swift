#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a Merkle tree could not answer or be updated: bad arguments, damaged level files, or I/O.
///
/// Tests match on the case, never on the wording of ``description``.
public enum MerkleTreeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A size was asked for that the tree has not reached.
    case sizeBeyondTree(size: UInt64, treeSize: UInt64)
    /// A leaf index was asked for that is not below the tree size used.
    case indexBeyondTreeSize(index: UInt64, size: UInt64)
    /// A consistency proof was asked for from a larger size to a smaller one.
    case oldSizeBeyondNewSize(old: UInt64, new: UInt64)
    /// A stored node was asked for that does not exist: level `level` holds `count` complete subtrees.
    case nodeOutOfRange(level: Int, index: UInt64, count: UInt64)
    /// A level file's length does not fit the others; the stored tree must be rebuilt from the leaves.
    case inconsistentLevelFile(path: String, length: Int64, expected: Int64)
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case let .sizeBeyondTree(size, treeSize):
            return "Tree size \(size) was asked for, but the tree has only \(treeSize) leaves."
        case let .indexBeyondTreeSize(index, size):
            return "Leaf \(index) is not in a tree of size \(size)."
        case let .oldSizeBeyondNewSize(old, new):
            return "A consistency proof from size \(old) to the smaller size \(new) does not exist; swap the sizes."
        case let .nodeOutOfRange(level, index, count):
            return "Node \(index) of level \(level) was asked for, but that level holds only \(count) nodes."
        case let .inconsistentLevelFile(path, length, expected):
            return "The Merkle level file \(path) has \(length) bytes where \(expected) were expected: the stored "
                + "tree hashes do not fit together (an interrupted write, or damage). They are a cache of the "
                + "leaves: remove the level files and rebuild the tree from the log."
        case let .io(operation, path, errno):
            let reason = strerror(errno).map { String(cString: $0) } ?? "errno \(errno)"
            return "\(operation) failed for \(path): \(reason). Check the disk, its free space and the "
                + "permissions of the ledger directory, then try again."
        }
    }
}

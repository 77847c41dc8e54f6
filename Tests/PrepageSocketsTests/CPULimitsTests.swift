import Foundation
import PrepageSockets
import Testing

/// `--threads`' default: the CPU affinity and the cgroup CPU quota, read from fixture
/// trees (`Tests/Fixtures/cpu/<case>`: `proc/self/{cgroup,mountinfo}` and the cgroup
/// files as a container, a systemd host and a v1 host show them), never from the machine.
@Suite struct CPULimitsTests {
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/cpu/\(name)").path
    }

    @Test(arguments: [
        ("v2-container", 1.5),  // cpu.max 150000 100000 at the namespace's root
        ("v2-systemd", 2.0),  // the service has max, its slice 200000 100000
        ("v1-container", 3.0),  // the pod's subtree mounted as the cpu hierarchy's root
        ("v1-host", 0.5),  // the service -1, its parent 50000 / 100000
    ])
    func readsTheSmallestQuotaOnTheWayToTheRoot(_ name: String, _ cpus: Double) {
        #expect(CPULimits.cgroupQuota(root: Self.fixture(name)) == cpus)
    }

    @Test(arguments: ["v2-unlimited", "none"])
    func noQuotaWhereNoneIsSetOrNothingIsReadable(_ name: String) {
        #expect(CPULimits.cgroupQuota(root: Self.fixture(name)) == nil)
    }

    @Test func theLoopsAreTheSmallerLimitRoundedUpAndAtLeastOne() {
        #expect(CPULimits(affinity: 8, quota: 1.5, online: 64).usable == 2)
        #expect(CPULimits(affinity: 1, quota: 4, online: 64).usable == 1)
        #expect(CPULimits(affinity: 6, quota: nil, online: 64).usable == 6)
        #expect(CPULimits(affinity: nil, quota: nil, online: 4).usable == 4)
        #expect(CPULimits(affinity: nil, quota: 2, online: 128).usable == 2)
        #expect(CPULimits(affinity: 8, quota: 0.2, online: 8).usable == 1)
    }

    @Test func parsesCPUMaxAndCFSValues() {
        #expect(CPULimits.parseCPUMax("max 100000\n") == nil)
        #expect(CPULimits.parseCPUMax("50000 100000\n") == 0.5)
        #expect(CPULimits.parseCPUMax("400000\n") == 4)  // period left out: 100000
        #expect(CPULimits.parseCPUMax("") == nil)
        #expect(CPULimits.parseCPUMax("x y") == nil)
        #expect(CPULimits.parseCFS(quota: "-1\n", period: "100000\n") == nil)
        #expect(CPULimits.parseCFS(quota: "250000\n", period: "100000\n") == 2.5)
        #expect(CPULimits.parseCFS(quota: "100000", period: "0") == nil)
        #expect(CPULimits.parseCFS(quota: nil, period: "100000") == nil)
    }

    @Test func findsTheHierarchyAndWalksUpToItsMount() {
        let v2 = CPULimits.cgroupDirectories(
            cgroup: "0::/a/b\n",
            mountinfo: "30 26 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
        #expect(v2.map(\.path) == ["/sys/fs/cgroup/a/b", "/sys/fs/cgroup/a", "/sys/fs/cgroup"])
        #expect(v2.allSatisfy { $0.v2 })
        // A v1 cpu controller wins over a hybrid system's empty v2 hierarchy, and a mount
        // point with an escaped space is read as the kernel means it.
        let v1 = CPULimits.cgroupDirectories(
            cgroup: "0::/\n3:cpuacct,cpu:/x\n",
            mountinfo: """
                30 26 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
                31 25 0:28 / /mnt/cg\\040cpu rw - cgroup cgroup rw,cpuacct,cpu
                """)
        #expect(v1.map(\.path) == ["/mnt/cg cpu/x", "/mnt/cg cpu"])
        #expect(v1.allSatisfy { !$0.v2 })
        #expect(CPULimits.cgroupDirectories(cgroup: "", mountinfo: "").isEmpty)
    }

    @Test func thisProcessHasAtLeastOneUsableCPU() {
        // The machine's own figures are not asserted, only that they make sense.
        let limits = CPULimits.current()
        #expect(limits.usable >= 1)
        if let affinity = limits.affinity { #expect(affinity >= 1) }
    }
}

import PrepageCore
import PrepageSimulator
import Testing

/// The targets of the paper's claims: tests that fail when they are lost.
@Suite struct PaperClaimsTests {
    @Test func fig3RangeStaysWithinFivePercentOfNUpToTwentyPercentNoise() throws {
        var fig = Fig3()
        fig.noiseRates = [0, 0.05, 0.10, 0.15, 0.20]
        for row in try fig.run() {
            #expect((0.95...1.05).contains(row.nminOverN), "NMin/N \(row.nminOverN) at noise \(row.noise)")
            #expect((0.95...1.05).contains(row.nmaxOverN), "NMax/N \(row.nmaxOverN) at noise \(row.noise)")
        }
    }

    @Test func fig3CleanLoadTakesAboutOneFaultPerCase() throws {
        var fig = Fig3()
        fig.noiseRates = [0]
        let row = try #require(try fig.run().first)
        #expect(row.faultsPerCase < 1.05)
    }

    func compare(_ workload: String) throws -> [String: CompareRow] {
        let comparison = Comparison(
            workloads: SuiteWorkload.suite().filter { $0.name == workload },
            policies: ["none", "forward", "readahead", "dp", "oracle"])
        return Dictionary(uniqueKeysWithValues: try comparison.run().map { ($0.policy, $0) })
    }

    @Test func dpStallIsWithinTenPercentOfTheOracleOnACleanLoad() throws {
        let rows = try compare("fsd-clean")
        #expect(rows["dp"]!.stallMicros <= 1.10 * rows["oracle"]!.stallMicros)
        // Every seed, not just the mean.
        #expect(rows["dp"]!.stallOverOracleRange.upperBound <= 1.10)
    }

    @Test(arguments: ["fsd-clean", "fsd-noise-around"])
    func dpStallsLessThanTheBaselines(_ workload: String) throws {
        let rows = try compare(workload)
        for baseline in ["none", "forward", "readahead"] {
            #expect(rows["dp"]!.stallMicros < rows[baseline]!.stallMicros, "dp vs \(baseline) on \(workload)")
        }
    }

    @Test func streamIdsMatterWhenVCPUsInterleave() throws {
        let comparison = Comparison(
            workloads: SuiteWorkload.suite().filter { $0.name.hasPrefix("vcpus8") }, policies: ["dp"])
        let rows = try comparison.run()
        let with = rows.first { $0.workload == "vcpus8-streams" }!
        let without = rows.first { $0.workload == "vcpus8-stream0" }!
        #expect(with.faults * 2 < without.faults)
    }
}

@Suite struct SimulationTests {
    @Test func noneFaultsOncePerPageAndOracleOncePerCase() throws {
        let cases = FSDWorkload(n: 10, cases: 50).cases(seed: 3)
        var none = try PrepagerPolicy(PrepageConfig(policy: .none))
        let m = Simulation().run(&none, cases: cases)
        #expect(m.faults == 500 && m.pagesFetched == 500 && m.pagesNeeded == 500)
        var oracle = OraclePolicy()
        let o = Simulation().run(&oracle, cases: cases)
        #expect(o.faults == 50 && o.pagesWasted == 0)
    }

    @Test func linkModelChargesRoundTripPlusTransfer() {
        let link = LinkModel(rttMicros: 100, bitsPerSecond: 1e9, pageSize: 4_096)
        #expect(abs(link.stall(pages: 1) - 132.768) < 1e-9)
    }

    @Test func downwardCasesAreTouchedFromTheTop() throws {
        let cases = [Case(base: 1_000, size: 8, downward: true)]
        var faults: [Int] = []
        var none = try PrepagerPolicy(PrepageConfig(policy: .none))
        _ = Simulation().run(&none, cases: cases) { page, _ in faults.append(page) }
        #expect(faults == Array((1_000..<1_008).reversed()))
    }

    @Test func noisyCaseSizesStayInTheirShapeAndAreNeverN() {
        var rng = SplitMix64(seed: 9)
        for _ in 0..<2_000 {
            let a = NoiseShape.around.draw(n: 64, using: &rng)
            #expect((32...96).contains(a) && a != 64)
            let b = NoiseShape.below.draw(n: 64, using: &rng)
            #expect((6..<64).contains(b))
            let c = NoiseShape.above.draw(n: 64, using: &rng)
            #expect((65...192).contains(c))
        }
    }

    @Test func swapReadaheadGrowsWithHitsAndNeverHalvesTooFast() {
        var s = SwapReadaheadPolicy()
        let ctx = { (hits: Int) in FaultContext(remainingLow: 0, remainingHigh: 1, hits: hits) }
        #expect(s.fault(page: 100, stream: 0, context: ctx(0)).count == 1)  // no hits, not adjacent
        #expect(s.fault(page: 101, stream: 0, context: ctx(0)).count == 2)  // adjacent: hits + 2
        #expect(s.fault(page: 103, stream: 0, context: ctx(5)) == (103 - 3, 8))  // round up, capped at 8, centred
        #expect(s.fault(page: 500, stream: 0, context: ctx(0)).count == 4)  // not below half of 8
    }

    @Test func traceReplayCountsFaultsAndWaste() throws {
        var replay = TraceReplay(policy: try PrepagerPolicy(PrepageConfig(policy: .forward)))
        for page in [10, 11, 12, 30] { replay.touch(page: page, stream: 0) }
        #expect(replay.metrics.faults == 2)  // 10 fetches 10…17; 30 fetches 30…37
        #expect(replay.metrics.pagesFetched == 16 && replay.metrics.pagesNeeded == 4)
        #expect(replay.metrics.pagesWasted == 12)
    }

    @Test(arguments: [("0x1000", 4_096, 1), ("8192 3", 4_096, 2), ("  42  # c", 0, 42)])
    func traceLinesAcceptDecimalHexAndComments(line: String, pageSize: Int, page: Int) throws {
        let parsed = try TraceLine.parse(Substring(line), pageSize: pageSize == 0 ? nil : pageSize)
        #expect(parsed?.page == page)
    }

    @Test(arguments: ["0xZZ", "12 -1", "1 2 3", "-5", "0x"])
    func traceLinesRejectGarbage(_ line: String) {
        #expect(throws: FaultLineError.self) { try TraceLine.parse(Substring(line), pageSize: nil) }
    }

    @Test func commentAndBlankLinesAreSkipped() throws {
        #expect(try TraceLine.parse("# header", pageSize: nil) == nil)
        #expect(try TraceLine.parse("   ", pageSize: nil) == nil)
    }
}

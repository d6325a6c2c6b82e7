package postgres

// StatisticsLockKey is the advisory lock refreshers hold, for tests that
// play another instance.
const StatisticsLockKey = int64(statisticsLockKey)

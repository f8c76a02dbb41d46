package convert

// ItemData is itemData, for the tests of the data bytes it finds.
var ItemData = itemData

package codename

// The word lists are the project's own. Every noun starts with a capital
// ASCII letter, which Codename relies on for alliteration.

var categories = withNames([]Category{
	{name: "animals", nouns: []string{
		"Albatross", "Badger", "Beaver", "Cheetah", "Coyote", "Dolphin", "Eagle",
		"Falcon", "Ferret", "Gecko", "Gazelle", "Heron", "Hedgehog", "Ibis",
		"Jaguar", "Koala", "Kestrel", "Lemur", "Lynx", "Marten", "Mongoose",
		"Narwhal", "Ocelot", "Otter", "Panda", "Puffin", "Quokka", "Raven",
		"Reindeer", "Salamander", "Stoat", "Tapir", "Tiger", "Urchin", "Vole",
		"Walrus", "Wombat", "Yak", "Zebra",
	}},
	{name: "science", nouns: []string{
		"Archimedes", "Avogadro", "Bohr", "Boyle", "Curie", "Copernicus",
		"Darwin", "Dirac", "Einstein", "Euler", "Faraday", "Franklin", "Galileo",
		"Gauss", "Hopper", "Hubble", "Hypatia", "Joule", "Kepler", "Lovelace",
		"Linnaeus", "Maxwell", "Meitner", "Newton", "Noether", "Ohm", "Pascal",
		"Pasteur", "Planck", "Ramanujan", "Rutherford", "Sagan", "Somerville",
		"Tesla", "Turing", "Volta", "Watt", "Wu",
	}},
	{name: "space", nouns: []string{
		"Andromeda", "Asteroid", "Betelgeuse", "Callisto", "Comet", "Deimos",
		"Eclipse", "Europa", "Galaxy", "Ganymede", "Halley", "Io", "Jupiter",
		"Kuiper", "Luna", "Meteor", "Mercury", "Nebula", "Neptune", "Orion",
		"Phoebe", "Pulsar", "Quasar", "Rigel", "Saturn", "Sirius", "Titan",
		"Triton", "Umbriel", "Vega", "Venus", "Zenith",
	}},
})

var adjectives = []string{
	"Agile", "Amber", "Ample", "Bold", "Brave", "Bright", "Brisk", "Calm",
	"Clever", "Curious", "Daring", "Dapper", "Dashing", "Eager", "Earnest",
	"Electric", "Fearless", "Fierce", "Gallant", "Gentle", "Glowing", "Happy",
	"Hardy", "Humble", "Icy", "Idle", "Jolly", "Jovial", "Keen", "Kind",
	"Lively", "Lucky", "Lunar", "Merry", "Mighty", "Mellow", "Nimble", "Noble",
	"Odd", "Orbital", "Plucky", "Proud", "Patient", "Quick", "Quiet", "Quirky",
	"Radiant", "Rapid", "Restless", "Serene", "Steady", "Swift", "Tidy",
	"Tireless", "Tranquil", "Upbeat", "Unruly", "Valiant", "Vivid", "Witty",
	"Wise", "Wandering", "Young", "Zany", "Zealous", "Zesty",
}

// adjectivesByInitial indexes adjectives by their first byte.
var adjectivesByInitial = func() (byInitial [256][]string) {
	for _, a := range adjectives {
		byInitial[a[0]] = append(byInitial[a[0]], a)
	}
	return byInitial
}()

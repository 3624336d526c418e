package randomprovider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// idResource is random_id: random bytes in several encodings.
type idResource struct{ stateOnly }

var _ provider.StateBacked = idResource{}

func (idResource) Schema() *provider.Schema {
	c := func(d string) *provider.Attribute {
		return &provider.Attribute{Type: provider.String, Computed: true, Description: d}
	}
	return &provider.Schema{
		Description: "Random bytes, in base64 and hex (hashicorp/random's random_id); id is b64_url.",
		Attributes: map[string]*provider.Attribute{
			"byte_length": {Type: provider.Number, Required: true, ForceNew: true, Description: "The number of random bytes to produce. The minimum value is 1, which produces eight bits of randomness."},
			"prefix":      {Type: provider.String, Optional: true, ForceNew: true, Description: "Arbitrary string to prefix the output value with. This string is supplied as-is, meaning it is not guaranteed to be URL-safe or base64 encoded."},
			"keepers":     keepers,
			"b64_url":     c("The generated id presented in base64, using the URL-friendly character set: case-sensitive letters, digits and the characters _ and -."),
			"b64_std":     c("The generated id presented in base64 without additional transformations."),
			"hex":         c("The generated id presented in padded hexadecimal digits. This result will always be twice as long as the requested byte length."),
			"dec":         c("The generated id presented in non-padded decimal digits."),
		},
	}
}

func (idResource) Validate(v provider.Values, known map[string]bool) error {
	if n, ok := knownInt(v, known, "byte_length"); ok && (n < 1 || n > 1<<16) {
		return fmt.Errorf("byte_length must be from 1 to 65536, not %d", n)
	}
	return nil
}

func (idResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	b := make([]byte, planned.Int("byte_length"))
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	p := planned.String("prefix")
	out := planned.Clone()
	out["b64_url"] = p + base64.RawURLEncoding.EncodeToString(b)
	out["b64_std"] = p + base64.StdEncoding.EncodeToString(b)
	out["hex"] = p + hex.EncodeToString(b)
	out["dec"] = p + new(big.Int).SetBytes(b).String()
	out["id"] = base64.RawURLEncoding.EncodeToString(b)
	return out, nil
}

// integerResource is random_integer.
type integerResource struct{ stateOnly }

var _ provider.StateBacked = integerResource{}

func (integerResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A random integer in [min, max] (hashicorp/random's random_integer).",
		Attributes: map[string]*provider.Attribute{
			"min":     {Type: provider.Number, Required: true, ForceNew: true, Description: "The minimum inclusive value of the range."},
			"max":     {Type: provider.Number, Required: true, ForceNew: true, Description: "The maximum inclusive value of the range."},
			"seed":    {Type: provider.String, Optional: true, ForceNew: true, Description: "A custom seed to always produce the same value."},
			"keepers": keepers,
			"result":  {Type: provider.Number, Computed: true, Description: "The random integer result."},
		},
	}
}

func (integerResource) Validate(v provider.Values, known map[string]bool) error {
	lo, ok1 := knownInt(v, known, "min")
	hi, ok2 := knownInt(v, known, "max")
	if ok1 && ok2 && hi < lo {
		return fmt.Errorf("minimum value needs to be smaller than or equal to maximum value")
	}
	return nil
}

func (integerResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	lo, hi := planned.Int("min"), planned.Int("max")
	span := new(big.Int).Add(new(big.Int).Sub(big.NewInt(hi), big.NewInt(lo)), big.NewInt(1))
	var n *big.Int
	if planned.Has("seed") {
		// The same seed, range and host make the same number, as the
		// provider's seeded generator does for the same seed.
		r := newStream([]byte("random_integer seed"), planned.String("seed"), strconv.FormatInt(lo, 10), strconv.FormatInt(hi, 10))
		i, err := rand.Int(r, span)
		if err != nil {
			return nil, err
		}
		n = i
	} else {
		i, err := rand.Int(rand.Reader, span)
		if err != nil {
			return nil, err
		}
		n = i
	}
	res := n.Int64() + lo
	out := planned.Clone()
	out["result"], out["id"] = res, strconv.FormatInt(res, 10)
	return out, nil
}

// uuidResource is random_uuid.
type uuidResource struct{ stateOnly }

var _ provider.StateBacked = uuidResource{}

func (uuidResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A random version 4 UUID (hashicorp/random's random_uuid).",
		Attributes: map[string]*provider.Attribute{
			"keepers": keepers,
			"result":  {Type: provider.String, Computed: true, Description: "The generated uuid presented in string format."},
		},
	}
}

func (uuidResource) Validate(provider.Values, map[string]bool) error { return nil }

func (uuidResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	u := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	out := planned.Clone()
	out["result"], out["id"] = u, u
	return out, nil
}

// shuffleResource is random_shuffle.
type shuffleResource struct{ stateOnly }

var _ provider.StateBacked = shuffleResource{}

func (shuffleResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A random permutation of a list of strings (hashicorp/random's random_shuffle); its id is a random nonce (the provider's is \"-\").",
		Attributes: map[string]*provider.Attribute{
			"input":        {Type: provider.StringList, Required: true, ForceNew: true, Description: "The list of strings to shuffle."},
			"result_count": {Type: provider.Number, Optional: true, ForceNew: true, Description: "The number of results to return. Defaults to the number of items in the input list. If fewer items are requested, some elements will be excluded from the result. If more items are requested, items will be repeated in the result but not more frequently than the number of items in the input list."},
			"seed":         {Type: provider.String, Optional: true, ForceNew: true, Description: "Arbitrary string with which to seed the random number generator, in order to produce less-volatile permutations of the list."},
			"keepers":      keepers,
			"result":       {Type: provider.StringList, Computed: true, Description: "Random permutation of the list of strings given in input."},
		},
	}
}

func (shuffleResource) Validate(v provider.Values, known map[string]bool) error {
	if n, ok := knownInt(v, known, "result_count"); ok && n < 0 {
		return fmt.Errorf("result_count must not be negative")
	}
	return nil
}

func (shuffleResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	in := append([]string(nil), planned.List("input")...)
	r := rand.Reader
	if planned.Has("seed") {
		r = newStream([]byte("random_shuffle seed"), planned.String("seed"), strings.Join(in, "\x00"))
	}
	count := len(in)
	if planned.Has("result_count") {
		count = int(planned.Int("result_count"))
	}
	var res []string
	for len(in) > 0 && len(res) < count {
		perm := append([]string(nil), in...)
		for i := len(perm) - 1; i > 0; i-- {
			j, err := intn(r, i+1)
			if err != nil {
				return nil, err
			}
			perm[i], perm[j] = perm[j], perm[i]
		}
		res = append(res, perm[:min(len(perm), count-len(res))]...)
	}
	if res == nil {
		res = []string{}
	}
	id, err := nonce()
	if err != nil {
		return nil, err
	}
	out := planned.Clone()
	out["result"], out["id"] = res, id
	return out, nil
}

// petResource is random_pet.
type petResource struct{ stateOnly }

var _ provider.StateBacked = petResource{}

func (petResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A random pet name (hashicorp/random's random_pet): length words, adverbs and an adjective before a name; id is the name.",
		Attributes: map[string]*provider.Attribute{
			"length":    {Type: provider.Number, Optional: true, ForceNew: true, Default: int64(2), Description: "The length (in words) of the pet name. Defaults to 2"},
			"prefix":    {Type: provider.String, Optional: true, ForceNew: true, Description: "A string to prefix the name with."},
			"separator": {Type: provider.String, Optional: true, ForceNew: true, Default: "-", Description: "The character to separate words in the pet name. Defaults to \"-\""},
			"keepers":   keepers,
		},
	}
}

func (petResource) Validate(v provider.Values, known map[string]bool) error {
	if n, ok := knownInt(v, known, "length"); ok && (n < 1 || n > 64) {
		return fmt.Errorf("length must be from 1 to 64, not %d", n)
	}
	return nil
}

var (
	adverbs    = strings.Fields("abnormally absolutely accurately actively actually adequately admittedly amazingly annually apparently badly barely basically blatantly blindly briefly brightly broadly busily calmly carefully certainly cheaply clearly closely commonly correctly crisply daily deadly deeply definitely deftly eagerly early easily evenly exactly fairly firmly formally freely frankly fully gently gladly globally greatly happily hardly highly honestly hugely ideally jointly kindly largely lately lightly likely literally loudly lovely luckily mainly manually merely mildly mostly nationally nearly neatly nicely notably openly partly perfectly physically plainly politely poorly presumably privately promptly properly quickly quietly rapidly rarely really recently regularly solely specially steadily strangely strongly suddenly surely sweetly swiftly totally truly usefully utterly vastly violently vitally warmly weekly wholly widely wildly")
	adjectives = strings.Fields("able above active adapted adequate advanced alert alive allowed amazed amazing ample amused amusing apt aware awake balanced becoming beloved better big bold boss brave brief bright busy calm capable capital careful caring casual causal central certain champion charmed charming cheerful chief choice civil classic clean clear clever climbing close closing coherent comic communal complete composed concise concrete content cool correct cosmic crack creative credible crisp crucial cuddly cunning curious current cute daring darling dashing dear decent deciding deep definite delicate desired destined devoted direct discrete distinct diverse divine dominant driven driving dynamic eager easy electric elegant emerging eminent enabled enabling endless engaged engaging enhanced enjoyed enormous enough epic equal equipped eternal ethical evident evolved evolving exact excited exciting exotic expert factual fair faithful famous fancy fast feasible fine firm first fit fitting fleet flexible flowing fluent flying fond frank free fresh full fun funny game generous gentle genuine giving glad glorious glowing golden good gorgeous grand grateful great growing grown guided guiding handy happy hardy harmless healthy helped helpful helping heroic hip holy honest hopeful hot huge humane humble humorous ideal immense immune improved in included infinite informed innocent inspired integral intense intent internal intimate inviting joint just keen key kind knowing known large lasting leading learning legal legible lenient liberal light liked literate live living logical loved loving loyal lucky magical magnetic main major many massive master mature maximum measured meet merry mighty mint model modern modest moral more moved moving musical mutual national native natural nearby neat needed neutral new next nice noble normal notable noted novel obliging on one open optimal optimum organic oriented outgoing patient peaceful perfect pet picked pleasant pleased pleasing poetic polished polite popular positive possible powerful precious precise premium prepared present pretty primary prime pro probable profound promoted prompt proper proud proven pumped pure quality quick quiet rapid rare rational ready real refined regular related relative relaxed relaxing relevant relieved renewed renewing resolved rested rich right robust romantic ruling sacred safe saved saving secure select selected sensible set settled settling sharing sharp shining simple sincere singular skilled smart smashing smiling smooth social solid sought sound special splendid square stable star steady sterling still stirred stirring striking strong stunning subtle suitable suited summary sunny super superb supreme sure sweeping sweet talented teaching tender thankful thorough tidy tight together tolerant top topical tops touched touching tough true trusted trusting trusty ultimate unbiased uncommon unified unique united up upright upward usable useful valid valued vast verified viable vital vocal wanted warm wealthy welcome welcomed well whole willing winning wired wise witty wondrous workable working worthy")
	names      = strings.Fields("aardvark adder akita albacore alien alpaca anchovy anemone ant anteater antelope ape aphid arachnid asp baboon badger barnacle basilisk bass bat bear beagle bee beetle bengal bird bison blowfish bluebird bluegill bluejay boa boar bobcat bonefish boxer bream buck buffalo bug bull bulldog bullfrog bunny burro buzzard caiman calf camel cardinal caribou cat catfish cattle chamois cheetah chicken chigger chimp chipmunk cicada clam clown cobra cod collie colt condor coral corgi cougar cow cowbird coyote crab crane crappie crawdad crayfish cricket crow cub dane dassie deer dingo dinosaur doberman dodo doe dog dogfish dolphin donkey dory dove dragon drake drum duck duckling eagle earwig eel eft egret elephant elf elk emu escargot ewe falcon fawn feline ferret filly finch firefly fish flamingo flea flounder fly foal fowl fox frog gannet gar gator gazelle gecko gelding ghost ghoul gibbon gnat gnu goat goldfish goose gopher gorilla grackle griffon grizzly grouper grouse grub grubworm guinea gull guppy haddock hagfish halibut hamster hare hawk hedgehog hen hermit heron herring hippo hog honeybee hookworm hornet horse hound humpback husky hyena ibex iguana impala insect jackal jaguar jay jennet joey kangaroo katydid kid killdeer kingfish kit kite kitten kiwi koala kodiak koi krill lab labrador lacewing ladybird ladybug lamb lamprey lark leech lemming lemur leopard liger lion lionfish lizard llama lobster locust longhorn loon louse lynx macaque macaw mackerel maggot magpie malamute mallard mammal mammoth man manatee mantis marlin marmoset marmot marten martin mastiff mastodon mayfly meerkat midge mink minnow mite moccasin mole mollusk molly monarch mongoose mongrel monkey monster moose moray mosquito moth mouse mudfish mule mullet muskox mustang mutt narwhal newt octopus opossum orca oriole oryx osprey ostrich owl ox oyster panda panther parakeet parrot pegasus pelican penguin perch pheasant phoenix pig pigeon piglet pika pipefish piranha platypus polecat polliwog pony poodle porpoise possum prawn primate pug puma pup python quagga quail quetzal rabbit raccoon racer ram raptor rat rattler raven ray redbird redfish reindeer reptile rhino ringtail robin rodent rooster roughy sailfish salmon satyr sawfish sawfly scorpion sculpin seagull seahorse seal seasnail serval shad shark sheep shepherd shiner shrew shrimp silkworm skink skunk skylark sloth slug snail snake snapper snipe sole sparrow spider sponge squid squirrel stag stallion starfish starling stingray stinkbug stork sturgeon sunbeam sunbird sunfish swan swift swine tadpole tahr tapir tarpon teal terrier termite tetra thrush tick tiger titmouse toad tortoise toucan treefrog trout tuna turkey turtle unicorn urchin vervet viper vulture wahoo walleye walrus warthog wasp weasel weevil whale whippet wildcat wolf wombat woodcock worm wren yak yeti zebra")
)

func (petResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	pick := func(l []string) (string, error) {
		i, err := intn(rand.Reader, len(l))
		if err != nil {
			return "", err
		}
		return l[i], nil
	}
	n := int(planned.Int("length"))
	var words []string
	if planned.Has("prefix") {
		words = append(words, planned.String("prefix"))
	}
	for i := 0; i < n; i++ {
		l := adverbs
		switch {
		case i == n-1:
			l = names
		case i == n-2:
			l = adjectives
		}
		w, err := pick(l)
		if err != nil {
			return nil, err
		}
		words = append(words, w)
	}
	out := planned.Clone()
	out["id"] = strings.Join(words, planned.String("separator"))
	return out, nil
}

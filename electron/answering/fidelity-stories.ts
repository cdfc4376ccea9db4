// The built-in fidelity prompts for a base story model (no chat template, a context of a few hundred
// positions, e.g. stories260K from llama2.c, trained on TinyStories), in two shapes of eight:
// - one story cut in blocks (STORY_IN_BLOCKS): blocks[0] opens the story (the instruction block's
//   place, BOS on it), the passages are its middle paragraphs, `question` is how it goes on;
// - retrieval-shaped (STORIES_AS_PASSAGES), closer to a question's prompt: blocks[0] is the same
//   opening text in every prompt (as the instruction block is), the passages are unrelated short
//   stories (as retrieved documents are), and `question` goes on about one passage's character,
//   so the final block needs what that passage says; that passage comes first, as the best-scoring
//   passage does in a question's prompt (storyRetrievalPrompt puts it elsewhere).
// The final block is the part whose next-token predictions are compared with full attention. Each
// prompt stays under ~300 of the story model's tokens, well inside its 512 positions.
import type { FidelityTextPrompt } from './fidelity-prompts.ts';

export const STORY_IN_BLOCKS: readonly FidelityTextPrompt[] = [
  {
    blocks: [
      'Once upon a time, there was a little girl named Lily. She lived in a small house with her mom and dad.',
      'Every morning, Lily went to the garden to look at the flowers. She liked the red ones best. She gave them water from her little blue can.',
      'One day, Lily saw a small bird on the grass. The bird could not fly. It had a hurt wing. Lily was sad for the bird.',
      'Lily ran to her mom and said, "Mom, there is a bird with a hurt wing!" Her mom came to look. She said they could help the bird.',
    ],
    question: 'Lily and her mom put the bird in a box with a soft cloth. Every day, Lily gave the bird some seeds and water. After a few days, the bird was happy and',
  },
  {
    blocks: [
      'Once upon a time, there was a boy named Tim. Tim had a big red ball. He loved to play with it in the park.',
      'One sunny day, Tim went to the park with his dog, Max. Max liked to run and jump. Tim threw the ball and Max ran after it.',
      'Then the ball went into a big tree. It was stuck! Tim and Max looked up at the tree. Tim could not reach the ball.',
      'A tall girl named Sue saw them. She said, "I can help you!" Sue climbed the tree very slowly and carefully.',
    ],
    question: 'Sue got the ball and threw it down to Tim. Tim was very happy. He said, "Thank you, Sue!" Then Tim, Sue and Max played with the ball together until',
  },
  {
    blocks: [
      'Once upon a time, there was a little cat named Mittens. Mittens lived on a farm with a cow, a pig and a duck.',
      'Mittens liked to sleep in the sun. But one day, the sun went away and it began to rain. Mittens did not like the rain. She was wet and cold.',
      'The duck saw Mittens and said, "Come with me! I know a dry place." The duck took Mittens to the big red barn.',
      'In the barn, the cow and the pig were sleeping on the hay. It was warm and dry. Mittens was happy.',
    ],
    question: 'Mittens said, "Thank you, duck! You are a good friend." The duck smiled. Mittens curled up on the soft hay next to the cow and',
  },
  {
    blocks: [
      'Once upon a time, there was a little boy named Ben. Ben had a toy car. It was his favorite toy.',
      'One day, Ben took his car to school to show his friends. His friend Anna wanted to play with the car too.',
      'Ben did not want to share. He said, "No, it is my car!" Anna was sad and she started to cry.',
      'The teacher came over. She said, "Ben, when we share, everyone can be happy. Can you share with Anna?"',
    ],
    question: 'Ben thought about it. Then he gave the car to Anna. Anna smiled and said, "Thank you, Ben!" They played with the car together and Ben learned that',
  },
  {
    blocks: [
      'Once upon a time, there was a big, friendly dog named Spot. Spot lived with a girl named Amy.',
      'Amy and Spot liked to go to the beach. They played in the sand and ran in the water. Spot loved to dig big holes.',
      'One day, Spot was digging a hole and he found something shiny. It was an old box! Amy was very surprised.',
      'Amy opened the box. Inside, there were pretty shells and a small toy boat. Amy said, "Look, Spot! It is a treasure!"',
    ],
    question: 'Amy took the box home and showed it to her mom. Her mom said, "What a great treasure! Spot is a very good dog." Amy gave Spot a big hug and',
  },
  {
    blocks: [
      'Once upon a time, there was a little bunny named Hop. Hop lived in a hole under a big tree in the forest.',
      'Hop was hungry. He wanted to eat a carrot. But there were no carrots near his home. Hop went to look for food.',
      'Hop hopped and hopped. He saw a big garden with many carrots. But a big fox was near the garden. Hop was scared.',
      'A wise old owl saw Hop. The owl said, "Wait until the fox goes to sleep. Then you can get a carrot."',
    ],
    question: 'Hop waited and waited. Soon the fox was sleeping. Hop went very quietly into the garden and took a big orange carrot. He ran home and',
  },
  {
    blocks: [
      'Once upon a time, there was a girl named Sara. She had a pretty kite. The kite was yellow with a long tail.',
      'Sara went to the hill with her dad to fly the kite. The wind was strong. The kite went up, up, up into the sky.',
      'Then the wind pulled very hard and the string broke! The kite flew away over the trees. Sara was very sad.',
      'Her dad said, "Do not be sad, Sara. Let us go and find your kite." They walked into the woods to look for it.',
    ],
    question: 'After a long walk, they found the kite in a small tree. Dad helped Sara get it down. Sara was so happy that she jumped and',
  },
  {
    blocks: [
      'Once upon a time, there was a little fish named Finn. Finn lived in the sea with his mom.',
      'Finn liked to swim fast. He liked to play with the other fish. But his mom said, "Do not swim too far away."',
      'One day, Finn saw a big, shiny thing far away. He wanted to see it. He forgot what his mom said and swam very far.',
      'The shiny thing was a big net! Finn was stuck in the net. He was very scared and he called for help.',
    ],
    question: 'His mom heard him and came very fast. She helped Finn get out of the net. Finn said, "I am sorry, Mom. Next time I will listen to you." They swam home and',
  },
];

/** The opening every retrieval-shaped prompt shares, as every question shares the instruction block. */
export const SHARED_STORY_OPENING = 'Once upon a time, in a small town, there lived many children and animals. Here are some of their stories.';

/** A retrieval-shaped story prompt: the passage the continuation needs, and two that it does not. */
export interface StoryRetrieval {
  relevant: string;
  others: [string, string];
  question: string;
}

export const STORY_RETRIEVALS: readonly StoryRetrieval[] = [
  {
    relevant: 'Mia had a pink doll. She took the doll everywhere. At night, Mia put the doll in a small bed next to her own bed.',
    others: [
      'Tom was a little cat. He liked to sleep on the warm rug. One day, Tom saw a mouse and ran after it, but the mouse was too fast.',
      'Ben liked to build with blocks. He made a tall tower. Then his dog ran by and the tower fell down. Ben laughed and built it again.',
    ],
    question: 'The next day, Mia took her pink doll to the park. She sat on a bench and gave the doll a little hat. Then Mia',
  },
  {
    relevant: 'Kitty was a small white bird. She sang a pretty song every morning. All the animals woke up when they heard her song.',
    others: [
      'Sam was a big brown bear. He loved honey. Every day he went to the old tree to look for honey, and the bees were not happy.',
      'Lucy had a red bike. She rode it very fast down the hill. One day she fell, but she got up and rode again.',
    ],
    question: 'One morning, Kitty did not sing. The animals were worried. They went to her nest and saw that Kitty',
  },
  {
    relevant: 'Anna liked to paint. She painted the sun, the sky and the flowers. Her mom put the pictures on the wall.',
    others: [
      'Jack had a green frog named Hoppy. Hoppy lived in a jar with water and rocks. Jack gave Hoppy bugs to eat.',
      'Max was a fast dog. He could run faster than all the other dogs in the park. He liked to catch sticks.',
    ],
    question: 'One day, Anna wanted to paint something new. She looked out of the window and saw a big tree. Anna took her brush and',
  },
  {
    relevant: 'Lily found a shiny stone on the beach. It was blue and smooth. She put it in her pocket and took it home.',
    others: [
      'Zoe had a little garden. She grew carrots and beans. Every day she gave the plants water and sun.',
      'Bob was an old fish. He lived in a big pond. He liked to swim under the lily pads where it was cool.',
    ],
    question: 'When Lily got home, she showed the shiny blue stone to her dad. Her dad said it was very special. Lily put the stone',
  },
  {
    relevant: 'Spot was a puppy with black spots. He liked to dig in the mud. His mom had to wash him every night.',
    others: [
      'Tim had a big box of crayons. He drew a car, a house and a dog. He gave the picture to his grandma.',
      'Ellie was a small elephant. She was shy and did not like to talk. But she was very kind to everyone.',
    ],
    question: 'One day, Spot dug a very big hole in the mud. He was dirty from his nose to his tail. His mom saw him and said',
  },
  {
    relevant: 'Rosie was a little duck. She could not swim well. Every day she went to the pond to practice with her brothers.',
    others: [
      'Sue liked to bake cookies with her mom. They made round cookies with chocolate. The kitchen smelled very good.',
      'Jake had a toy plane. He threw it in the air and it flew across the yard. He ran to get it again and again.',
    ],
    question: 'After many days, Rosie could swim very well. She swam across the pond all by herself. Her brothers were happy and they',
  },
  {
    relevant: 'Oliver liked the rain. He put on his boots and jumped in the puddles. His clothes got all wet.',
    others: [
      'Leo was a lion who lived in the zoo. He had a big mane. Children came to see him every day and he liked to roar.',
      'Emma had a new pair of red shoes. She wore them to school. All her friends said the shoes were very pretty.',
    ],
    question: 'One day, it rained all morning. Oliver put on his boots and ran outside. He found the biggest puddle and',
  },
  {
    relevant: 'Peter had a kite shaped like a fish. He flew it on windy days. The kite danced high in the sky.',
    others: [
      'Daisy was a cow on a farm. She gave milk every morning. The farmer said she was the best cow.',
      'Grace had a little brother named Joe. Joe cried when he was hungry. Grace gave him his bottle and sang to him.',
    ],
    question: 'One windy day, Peter took his fish kite to the hill. The wind was very strong and the kite went higher and higher until',
  },
];

/** A retrieval's prompt with the relevant passage at `position` (0: first, as ranking by score puts it). */
export function storyRetrievalPrompt(r: StoryRetrieval, position = 0): FidelityTextPrompt {
  const passages = [...r.others];
  passages.splice(position, 0, r.relevant);
  return { blocks: [SHARED_STORY_OPENING, ...passages], question: r.question };
}

/** Relevant passage first, as a question's retrieval ranks the best passage first. */
export const STORIES_AS_PASSAGES: readonly FidelityTextPrompt[] = STORY_RETRIEVALS.map((r) => storyRetrievalPrompt(r));

/** The built-in set: both shapes. */
export const STORY_PROMPTS: readonly FidelityTextPrompt[] = [...STORY_IN_BLOCKS, ...STORIES_AS_PASSAGES];
